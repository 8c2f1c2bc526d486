"""The Functions app: logging, the app object, one blueprint per function group."""

import logging

import azure.functions as func

from functions import archive, ingest, meta, persist

logging.getLogger("azure").setLevel(logging.WARNING)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (ingest.bp, persist.bp, archive.bp, meta.bp):
    app.register_functions(blueprint)
