"""Indexing an app: what runs, what is reported, what stops the host from starting."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from devhost import DevHost, HostStartError
from devhost.loader import LoadError
from tests.devhost.conftest import HERE, QUEUE_APP

NO_KEYS = {"LOCAL_FUNCTION_KEY": "", "LOCAL_MASTER_KEY": ""}


def test_functions_the_host_cannot_run_are_reported_and_the_rest_served() -> None:
    app_dir = HERE / "sample_app_unsupported"
    with DevHost(app_dir, port=0, environ=NO_KEYS, queues=False, timers=False) as host:
        assert [fn.name for fn in host.functions] == ["fine"]
        assert set(host.errors) == {"bad_route", "on_blob", "with_table"}
        assert "unmatched" in host.errors["bad_route"]
        assert "blobTrigger" in host.errors["on_blob"]
        assert "table" in host.errors["with_table"]
        # the app's http_auth_level given as a string applies
        assert httpx.get(host.url("fine"), timeout=5).text == "fine"
        status = httpx.get(f"{host.base_url}/admin/host/status", timeout=5).json()
        assert len(status["errors"]) == 3


def test_a_missing_app_fails_to_start_and_leaves_the_environment_alone(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"no function_app\.py"):
        DevHost(tmp_path, port=0, environ={"DH_TEMPORARY": "x"}).start()
    assert "DH_TEMPORARY" not in os.environ


def test_two_function_apps_are_refused(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\napp = func.FunctionApp()\nother = func.FunctionApp()\n"
    )
    with pytest.raises(LoadError, match="exactly one FunctionApp"):
        DevHost(tmp_path, port=0).start()


def test_the_app_module_stays_private_to_the_host() -> None:
    app_dir = HERE / "sample_app_unsupported"
    before = sys.modules.get("function_app")
    with DevHost(app_dir, port=0, environ=NO_KEYS, queues=False, timers=False) as host:
        # `import function_app` elsewhere gets its own module, never the host's app
        assert sys.modules.get("function_app") is before
        assert host.app_module is not before
        assert str(app_dir) in sys.path  # for the app's own lazy imports
    assert str(app_dir) not in sys.path


def test_unreachable_storage_fails_the_start_quickly(
    queue_app_environ: Callable[..., dict[str, str]],
) -> None:
    # Azurite's account, but a port where nothing listens.
    unreachable = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    environ = queue_app_environ(AzureWebJobsStorage=unreachable, DH_ONLY_HERE="x")
    started = time.monotonic()
    with pytest.raises(HostStartError, match="could not start"):
        DevHost(QUEUE_APP, port=0, environ=environ, timers=False).start()
    assert time.monotonic() - started < 30
    assert "DH_ONLY_HERE" not in os.environ
