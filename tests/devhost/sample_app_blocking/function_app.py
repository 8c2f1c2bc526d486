"""Blocking sample app for the shutdown tests.

Each function blocks until RELEASE is set or its time is up (the route, message body or
DH_TIMER_SECONDS gives the seconds), so a test can hold work in flight across a stop and
free the threads afterwards. Each prints a line when it starts, for tests that read a
`python -m devhost` subprocess's output.
"""

import asyncio
import os
import threading

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

RELEASE = threading.Event()
LOCK = threading.Lock()
STARTED = {"http": 0, "async": 0, "loop": 0, "queue": 0, "timer": 0}


def _started(kind: str, seconds: float) -> None:
    with LOCK:
        STARTED[kind] += 1
    print(f"blocking {kind} for {seconds:g}s", flush=True)


@app.route(route="block/{seconds:double}", methods=["GET", "POST"])
def block_http(req: func.HttpRequest) -> func.HttpResponse:
    seconds = float(req.route_params["seconds"])
    _started("http", seconds)
    RELEASE.wait(seconds)
    return func.HttpResponse("done")


@app.route(route="async-block/{seconds:double}", methods=["GET"])
async def block_async(req: func.HttpRequest) -> func.HttpResponse:
    seconds = float(req.route_params["seconds"])
    _started("async", seconds)
    await asyncio.sleep(seconds)
    return func.HttpResponse("done")


@app.queue_trigger(arg_name="msg", queue_name="%DH_QUEUE_BLOCK%", connection="AzureWebJobsStorage")
def block_queue(msg: func.QueueMessage) -> None:
    seconds = float(msg.get_body())
    _started("queue", seconds)
    RELEASE.wait(seconds)


@app.timer_trigger(arg_name="timer", schedule="%DH_BLOCK_SCHEDULE%")
def block_timer(timer: func.TimerRequest) -> None:
    seconds = float(os.environ.get("DH_TIMER_SECONDS", "60"))
    _started("timer", seconds)
    RELEASE.wait(seconds)


@app.route(route="block-loop/{seconds:double}", methods=["GET"])
async def block_loop(req: func.HttpRequest) -> func.HttpResponse:
    """A coroutine function that blocks the host's event loop (a bug an app can have)."""
    seconds = float(req.route_params["seconds"])
    _started("loop", seconds)
    RELEASE.wait(seconds)
    return func.HttpResponse("done")
