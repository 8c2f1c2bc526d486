"""A sample app with functions devhost cannot run next to one it can."""

import azure.functions as func

app = func.FunctionApp(http_auth_level="ANONYMOUS")


@app.route(route="fine")
def fine(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("fine")


@app.route(route="bad/{unclosed")
def bad_route(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("unreachable")


@app.blob_trigger(arg_name="blob", path="container/{name}", connection="AzureWebJobsStorage")
def on_blob(blob: func.InputStream) -> None:
    pass


@app.route(route="with-table")
@app.table_input(arg_name="rows", table_name="things", connection="AzureWebJobsStorage")
def with_table(req: func.HttpRequest, rows: str) -> func.HttpResponse:
    return func.HttpResponse(rows)
