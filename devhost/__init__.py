"""A local Azure Functions host for machines without Core Tools (`func start`).

It runs the app's `function_app.py` unchanged, from the app's own registered
metadata (`app.get_functions()`), the way the Python worker indexes it. It is
a development and test tool only: the app never imports it, and it is not
deployed.

What it serves
  - HTTP triggers at `http://127.0.0.1:7071/<routePrefix>/<route>`: ASP.NET
    route templates (constraints, optional and catch-all parameters), methods
    (405 when only the method is wrong, 404 when no route matches), auth levels
    enforced when `LOCAL_FUNCTION_KEY` / `LOCAL_MASTER_KEY` are set (key in
    header `x-functions-key` or query `code`; the master key satisfies every
    level), an unhandled exception -> 500 with the traceback logged. Its own
    401/404/405 have empty bodies, as the real host's; a body over
    `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` bytes (default 100 MB) gets 413
    `{"error": ...}`, from Content-Length before the body is read, or as soon
    as a chunked body grows past it.
  - Queue triggers polled like the host's queue listener, with poison queues,
    and queue output bindings (`func.Out`, or `$return`).
  - Timer triggers on NCRONTAB (6 or 5 fields) or TimeSpan schedules,
    `run_on_startup` included.
  - Several worker processes when `FUNCTIONS_WORKER_PROCESS_COUNT` > 1
    (devhost/workers.py): copies of the host on one port, timers in one.
  - The admin API: `POST /admin/functions/{name}` `{"input": "..."}` runs a
    non-HTTP function in the background (202); `GET /admin/host/status`.
  - App Service Authentication as Azure applies it (devhost/easyauth.py):
    client-sent `X-MS-CLIENT-PRINCIPAL*` headers never reach a function; a
    local sign-in at `/.auth/login/dev` (user id, name, roles) sets an
    HMAC-signed `AppServiceAuthSession` cookie, from which the host sets
    `X-MS-CLIENT-PRINCIPAL` (+ `-ID`, `-NAME`, `-IDP: dev`); `/.auth/me`,
    `/.auth/logout`. None of it needs a key.
  - CORS as func start answers it (devhost/cors.py), when `Host.CORS` is set.

Configuration read from the app directory
  - `local.settings.json` `Values` go into os.environ (the real environment
    wins); `Host.LocalHttpPort` is the CLI's default port; `Host.CORS`
    (comma-separated origins, or `*` alone) and `Host.CORSCredentials`.
  - `AUTH_USER_ID_CLAIM`: the claim type the signed-in user's id is given
    under; `LOCAL_TRUST_CLIENT_PRINCIPAL=1` (tests only) lets client-sent
    principal headers through.
  - `host.json`: `extensions.http.routePrefix` (default "api");
    `extensions.queues`: batchSize (16), newBatchThreshold (batchSize/2),
    maxPollingInterval (00:01:00), visibilityTimeout (00:00:00),
    maxDequeueCount (5), messageEncoding ("base64" | "none");
    `functionTimeout` (unbounded when absent).
  - `%SETTING%` expressions in queue names and schedules; a binding's
    `connection` names a storage connection, default `AzureWebJobsStorage`,
    looked up as `AzureWebJobs<name>` then `<name>`: a connection string
    (`UseDevelopmentStorage=true` works), or identity-based `<name>__accountName`
    / `__queueServiceUri`, `__credential`, `__clientId` (shared/settings.py).
  - `WEBSITE_TIME_ZONE` (IANA name) for schedules, UTC otherwise;
    `PYTHON_THREADPOOL_THREAD_COUNT` for the synchronous-function thread pool.

Command line
  python -m devhost [--app-dir .] [--port 7071] [--host 127.0.0.1]
                    [--no-queues] [--no-timers] [--shutdown-grace 10] [--verbose]
  Prints the function list, serves until Ctrl-C or SIGTERM, then stops in bounded
  time (devhost/__main__.py has the contract): no new requests or polls at once,
  work in flight gets the grace period (DEVHOST_SHUTDOWN_GRACE), the rest is
  abandoned and logged; exit 0 when everything finished, else 1.

From tests
  with DevHost(app_dir, port=0, environ={"SETTING": "value"}) as host:
      httpx.post(host.url("v1/events"), json=[...])   # .../api/v1/events
      host.base_url                # http://127.0.0.1:<port> (admin routes)
      host.wait_idle(timeout=30)   # nothing in flight, every trigger queue empty
      host.app_module              # the imported function_app module
  `port=0` picks a free port. `environ` sets app settings for the host's
  lifetime, restored on stop. Start-up returns once HTTP listens and the
  trigger queues exist; it raises HostStartError when the app or its storage
  is unusable (functions the host cannot run are listed in `host.errors`).
  `wait_idle` also waits for messages one function queued for another and for
  failed messages waiting out their visibility timeout; it raises TimeoutError
  naming what is still busy. `stop(timeout=None)` (or leaving the `with`) stops
  serving, polling and timers at once, gives work in flight `timeout` seconds
  (default: the constructor's `stop_timeout`, 10), then abandons it; it returns
  a StopReport (`drained`, `abandoned`, `threads` still running function code)
  within timeout + ~2.5 s. Hosts in one process share os.environ, so run them
  one after another.
"""

from devhost.host import DevHost, HostStartError
from devhost.shutdown import StopReport

__all__ = ["DevHost", "HostStartError", "StopReport"]
