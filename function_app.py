"""The Functions app: logging, the app object, one blueprint per function group."""

import logging

import azure.functions as func

from functions import archive, ingest, meta, persist, realtime, rollup

logging.getLogger("azure").setLevel(logging.WARNING)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for module in (ingest, persist, archive, realtime, rollup, meta):
    app.register_functions(module.bp)
