"""HTTP sample app for the devhost tests: routes, conversions, auth levels, principals."""

import json
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _describe(req: func.HttpRequest) -> func.HttpResponse:
    document = {
        "method": req.method,
        "url": req.url,
        "headers": dict(req.headers),
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body": req.get_body().decode("utf-8"),
    }
    return func.HttpResponse(
        json.dumps(document),
        status_code=int(req.params.get("status", "200")),
        headers={"X-Sample": "yes"},
        mimetype="application/json",
    )


@app.route(route="echo/{name}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req)


@app.route(route="users/me", methods=["GET"], auth_level="anonymous")
def current_user(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("me")


@app.route(route="users/{user_id:guid}", methods=["GET", "DELETE"])
def user_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req)


@app.route(route="items/{item_id:int}/{tag:alpha?}", auth_level=func.AuthLevel.ANONYMOUS)
def item(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req)


@app.route(route="files/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def files(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req)


@app.route(methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def default_route(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("served at the function name", mimetype="text/html")


@app.function_name("Renamed")
@app.route(methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def renamed_function(req: func.HttpRequest) -> str:
    return "plain string"


@app.route(route="async/{value}", auth_level=func.AuthLevel.ANONYMOUS)
async def async_echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params["value"], status_code=201)


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("the function failed on purpose")


@app.route(route="setting/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def setting(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(os.environ.get(req.route_params["name"], "<unset>"))


@app.route(route="with-context", auth_level=func.AuthLevel.ANONYMOUS)
def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(f"{context.function_name} {context.invocation_id}")


@app.route(route="keys/function", methods=["GET"])
def function_level(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("function level")


@app.route(route="keys/admin", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_level(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin level")


@app.route(route="keys/anonymous", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def anonymous_level(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("anonymous level")


@app.route(route="sleep/{seconds:double}", auth_level=func.AuthLevel.ANONYMOUS)
def sleepy(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(float(req.route_params["seconds"]))
    return func.HttpResponse("woke up")


@app.route(route="whoami", auth_level=func.AuthLevel.ANONYMOUS)
def whoami(req: func.HttpRequest) -> func.HttpResponse:
    """The principal headers this function was given (Easy Auth's, or forged ones)."""
    seen = {k: v for k, v in req.headers.items() if k.lower().startswith("x-ms-client-principal")}
    return func.HttpResponse(json.dumps(seen), mimetype="application/json")


@app.route(route="size", methods=["POST", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
def body_size(req: func.HttpRequest) -> func.HttpResponse:
    """How many body bytes the function was given."""
    return func.HttpResponse(str(len(req.get_body())))
