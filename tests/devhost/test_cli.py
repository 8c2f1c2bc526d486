"""`python -m devhost`: start-up listing, serving, graceful SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.devhost.conftest import HTTP_APP, REPO, free_port, wait_until


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_cli_serves_until_sigterm(copy_app: Callable[..., Path]) -> None:
    port = free_port()
    settings = {
        "IsEncrypted": False,
        "Values": {"LOCAL_FUNCTION_KEY": "", "LOCAL_MASTER_KEY": ""},
        "Host": {"LocalHttpPort": port},  # no --port: this one is used
    }
    app_dir = copy_app(HTTP_APP, {"local.settings.json": settings})
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--app-dir", str(app_dir), "--no-queues"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/users/me"
        wait_until(lambda: answers(url), timeout=20, what="the CLI host to answer")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert f"current_user: [GET] http://localhost:{port}/api/users/me" in output
    assert f"Sign in (local Easy Auth): http://localhost:{port}/.auth/login/dev" in output
    assert "Executed 'Functions.current_user' (Succeeded" in output
    assert "Shutting down" in output


def test_cli_reports_a_broken_app(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "--app-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "no function_app.py" in result.stderr
