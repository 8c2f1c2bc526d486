"""The host's admin API: run a non-HTTP function on demand, report host status.

`POST /admin/functions/{name}` with `{"input": "..."}` answers 202 and runs the
function in the background, as the real host does: a queue function gets a
message whose body is the input text (dequeue count 1; failures are logged,
there is no queue message to retry), a timer function gets a TimerRequest.
When keys are configured every admin route needs the master key.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from azure.storage.queue import QueueMessage as StoredMessage

from devhost.activity import Activity
from devhost.auth import ADMIN, Keys, presented_key
from devhost.invoker import HOST_API_REASON, Invoker
from devhost.loader import FunctionSpec, HttpTrigger, QueueTrigger
from devhost.queues import queue_trigger_value
from devhost.shutdown import InFlight
from devhost.timers import timer_request

# How long Azure Storage keeps a message by default, for the synthetic message's expiry.
_MESSAGE_TTL = timedelta(days=7)


class AdminApi:
    def __init__(
        self,
        functions: list[FunctionSpec],
        *,
        errors: dict[str, str],
        keys: Keys,
        invoker: Invoker,
        activity: Activity,
        in_flight: InFlight,
    ) -> None:
        # Function names are case-insensitive in the host's APIs.
        self._functions = {fn.name.lower(): fn for fn in functions}
        self._errors = errors
        self._keys = keys
        self._invoker = invoker
        self._activity = activity
        self._in_flight = in_flight
        self._started = time.monotonic()

    async def handle(self, request: web.BaseRequest, raw_path: str) -> web.Response:
        if not self._keys.allows(ADMIN, presented_key(request.headers, request.query)):
            return web.Response(status=401)
        parts = [p for p in raw_path.strip("/").split("/")[1:] if p]
        if len(parts) == 2 and parts[0].lower() == "functions":
            if request.method != "POST":
                return web.Response(status=405, headers={"Allow": "POST"})
            return await self._invoke(request, parts[1])
        if [p.lower() for p in parts] == ["host", "status"]:
            return web.json_response(self.status())
        return web.Response(status=404)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "id": "devhost",
            "state": "Running",
            "version": "devhost",
            "processUptime": round((time.monotonic() - self._started) * 1000),
        }
        if self._errors:
            status["errors"] = [f"{name}: {why}" for name, why in self._errors.items()]
        return status

    async def _invoke(self, request: web.BaseRequest, name: str) -> web.Response:
        fn = self._functions.get(name.lower())
        if fn is None:
            return web.Response(status=404)
        if isinstance(fn.trigger, HttpTrigger):
            return web.json_response(
                {"error": f"'{fn.name}' is HTTP-triggered: call its route instead"}, status=400
            )
        try:
            text = await request.text()
            document = json.loads(text) if text.strip() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "the body must be JSON"}, status=400)
        given = document.get("input", "") if isinstance(document, dict) else ""
        value = _trigger_value(fn, given if isinstance(given, str) else json.dumps(given))
        # Counted as busy from now, so a caller that waits for idle after the 202 waits for it;
        # done even when the task is cancelled (at shutdown) before it starts.
        self._activity.begin()
        task = asyncio.create_task(self._invoker.invoke(fn, value, reason=HOST_API_REASON))
        task.add_done_callback(lambda _: self._activity.end())
        # InFlight keeps the task referenced until it ends.
        self._in_flight.add(task, f"admin-API run of Functions.{fn.name}")
        return web.Response(status=202)


def _trigger_value(fn: FunctionSpec, text: str) -> Any:
    if isinstance(fn.trigger, QueueTrigger):
        now = datetime.now(UTC)
        message = StoredMessage(
            text,
            id=str(uuid.uuid4()),
            inserted_on=now,
            expires_on=now + _MESSAGE_TTL,
            next_visible_on=now,
            dequeue_count=1,
        )
        return queue_trigger_value(fn, text.encode("utf-8"), message)
    return timer_request(past_due=False)
