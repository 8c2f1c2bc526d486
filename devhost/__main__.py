"""`python -m devhost`: serve function_app.py locally, as `func start` would."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import traceback
from pathlib import Path
from types import FrameType

from devhost.easyauth import LOGIN_PATH
from devhost.host import DevHost, HostStartError
from devhost.loader import LoadError
from devhost.settings import ConfigError, local_http_port

DEFAULT_PORT = 7071


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Run the Azure Functions app in --app-dir without Core Tools.",
    )
    parser.add_argument("--app-dir", type=Path, default=Path("."), help="default: .")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"default: local.settings.json Host.LocalHttpPort, else {DEFAULT_PORT}",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--no-queues", action="store_true", help="do not poll queue triggers")
    parser.add_argument("--no-timers", action="store_true", help="do not run timer triggers")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[%(asctime)s] %(message)s",
        stream=sys.stdout,
    )
    # The storage SDK logs every HTTP request at INFO; the pollers would flood the console.
    logging.getLogger("azure").setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()
        # A second Ctrl-C while draining ends the process at once.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        port = args.port if args.port is not None else local_http_port(args.app_dir)
        host = DevHost(
            args.app_dir,
            host=args.host,
            port=DEFAULT_PORT if port is None else port,
            queues=not args.no_queues,
            timers=not args.no_timers,
        ).start()
    except (HostStartError, LoadError, ConfigError, OSError) as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 1
    except Exception:  # the app itself failed to import: show where, as func start does
        traceback.print_exc()
        return 1
    print("\nFunctions:\n")
    for line in host.describe():
        print(f"\t{line}\n")
    print(f"Sign in (local Easy Auth): http://localhost:{host.port}{LOGIN_PATH}\n")
    print("Host started. Press Ctrl+C to shut down.", flush=True)
    stop.wait()
    print("Shutting down (Ctrl+C again to force)...", flush=True)
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
