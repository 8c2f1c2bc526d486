"""Browser tests: Playwright driving Debian's Chromium against the session host.

Playwright's own browser download cannot work on these machines, so the
system binary is launched (``CHROMIUM``, default /usr/bin/chromium;
``.ci/run`` installs Debian's ``chromium`` package). A missing browser fails
the run loudly, as a missing service does. axe-core comes from the pinned
tools/web packages (``make test`` installs them).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from scripts.benchlib.browser import CHROMIUM, CHROMIUM_FLAGS

ROOT = Path(__file__).resolve().parents[3]
AXE = ROOT / "tools" / "web" / "node_modules" / "axe-core" / "axe.min.js"
FLAGS = CHROMIUM_FLAGS
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium is not at {CHROMIUM}. Install it: apt-get install chromium "
            "(or set CHROMIUM to the binary)",
            pytrace=False,
        )
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport=DESKTOP)
    opened.set_default_timeout(10_000)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@lru_cache(maxsize=1)
def _axe_source() -> str:
    return AXE.read_text()


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE}); run make bootstrap", pytrace=False)
    # Evaluated, not added as a <script>: the pages' CSP (script-src 'self') blocks inline scripts.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source() + "\n;undefined")
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
