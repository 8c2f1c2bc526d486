"""The Functions app: logging, the app object, one blueprint per function group,
and the HTTP functions registered from their declarations (functions.routing)."""

import logging

import azure.functions as func

# Importing a function module declares its routes on API (ingest, meta,
# realtime, reports, privacy, dashboard) and its other triggers on its blueprint.
from functions import (  # noqa: F401
    archive,
    dashboard,
    ingest,
    meta,
    persist,
    privacy,
    realtime,
    reports,
    rollup,
)
from functions.routing import host_level_default, http_blueprint
from shared import telemetry
from shared.services.openapi import API
from shared.settings import Settings

logging.getLogger("azure").setLevel(logging.WARNING)
# Application Insights, when APPLICATIONINSIGHTS_CONNECTION_STRING is set (off locally).
telemetry.configure()

# Read now, not from the cached settings: the host indexes this module once per
# worker process, with the app settings of that process (AUTH_MODE included).
settings = Settings.from_env()
app = func.FunctionApp(http_auth_level=host_level_default(settings.auth_mode))

# The loop variable is named bp: azure-functions-doctor recognises that form.
for bp in (
    http_blueprint(API, settings),
    persist.bp,
    archive.bp,
    realtime.bp,
    rollup.bp,
    privacy.bp,
):
    app.register_functions(bp)
