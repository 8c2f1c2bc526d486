"""How Chromium is launched here: the browser tests and the dashboard benchmark share it.

Debian's Chromium (``CHROMIUM``, default /usr/bin/chromium; Playwright's own
download cannot work on these machines) with what a closed network and a
headless root session need (docs/development.md).
"""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
