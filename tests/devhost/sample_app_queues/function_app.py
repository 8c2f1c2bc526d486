"""Queue and timer sample app for the devhost tests.

Every function records what it saw in RECORDS (by function name), which the
tests read through `DevHost.app_module`. Queue names and schedules come from
app settings (`%DH_...%`), so each test run uses queues of its own.
"""

import os
import threading
import time
from collections import defaultdict
from typing import Any

import azure.functions as func

app = func.FunctionApp()

LOCK = threading.Lock()
RECORDS: dict[str, list[dict[str, Any]]] = defaultdict(list)
SLOW = {"running": 0, "most": 0}


def _record(function: str, **fields: Any) -> None:
    with LOCK:
        RECORDS[function].append({"at": time.monotonic(), **fields})


@app.queue_trigger(arg_name="msg", queue_name="%DH_QUEUE_WORK%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    _record(
        "work",
        body=body,
        id=msg.id,
        dequeue_count=msg.dequeue_count,
        insertion_time=msg.insertion_time,
        pop_receipt=msg.pop_receipt,
    )
    if body.startswith(b"fail"):
        raise RuntimeError("failing on purpose")


# "DhStorage" is a custom connection setting name, resolved like the host does.
@app.queue_trigger(arg_name="msg", queue_name="%DH_QUEUE_SLOW%", connection="DhStorage")
def slow(msg: func.QueueMessage) -> None:
    with LOCK:
        SLOW["running"] += 1
        SLOW["most"] = max(SLOW["most"], SLOW["running"])
    try:
        time.sleep(float(os.environ.get("DH_SLOW_SECONDS", "0.3")))
    finally:
        with LOCK:
            SLOW["running"] -= 1
    _record("slow", body=msg.get_body(), dequeue_count=msg.dequeue_count)


@app.queue_trigger(
    arg_name="text", queue_name="%DH_QUEUE_FORWARD%", connection="AzureWebJobsStorage"
)
@app.queue_output(arg_name="out", queue_name="%DH_QUEUE_SINK%", connection="AzureWebJobsStorage")
def forward(text: str, out: func.Out[list[str]]) -> None:
    out.set([text.upper(), text.lower()])


@app.queue_trigger(arg_name="body", queue_name="%DH_QUEUE_SINK%", connection="AzureWebJobsStorage")
async def sink(body: bytes) -> None:
    _record("sink", body=body)


@app.timer_trigger(arg_name="timer", schedule="%DH_TICK_SCHEDULE%", run_on_startup=True)
def tick(timer: func.TimerRequest) -> None:
    _record("tick", past_due=timer.past_due, wall=time.time())


@app.timer_trigger(arg_name="timer", schedule="%DH_FAILING_SCHEDULE%")
def failing_tick(timer: func.TimerRequest) -> None:
    _record("failing_tick", wall=time.time())
    raise RuntimeError("timer failing on purpose")
