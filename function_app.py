"""The Functions app: logging, the app object, one blueprint per function group."""

import logging

import azure.functions as func

from functions import archive, ingest, meta, persist, privacy, realtime, reports, rollup

logging.getLogger("azure").setLevel(logging.WARNING)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

# The loop variable is named bp: azure-functions-doctor recognises that form.
for bp in (
    ingest.bp,
    persist.bp,
    archive.bp,
    realtime.bp,
    rollup.bp,
    privacy.bp,
    reports.bp,
    meta.bp,
):
    app.register_functions(bp)
