"""The dashboard's vendored Chart.js is exactly the build the lock file pins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "tools" / "web"
VENDOR = ROOT / "dashboard" / "vendor"


def test_the_vendored_chart_js_is_the_pinned_package_file() -> None:
    installed = WEB / "node_modules" / "chart.js"
    if not installed.is_dir():
        pytest.fail("tools/web is not installed: run make bootstrap (npm ci)", pytrace=False)
    lock = json.loads((WEB / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/chart.js"]["version"]
    assert json.loads((installed / "package.json").read_text())["version"] == pinned
    assert (VENDOR / "chart.umd.min.js").read_bytes() == (
        installed / "dist" / "chart.umd.min.js"
    ).read_bytes(), (
        "refresh it: cp tools/web/node_modules/chart.js/dist/chart.umd.min.js dashboard/vendor/"
    )
    assert f"Chart.js v{pinned}" in (VENDOR / "chart.umd.min.js").read_text()[:200]
    assert (VENDOR / "chart.js.LICENSE.md").read_bytes() == (installed / "LICENSE.md").read_bytes()
