"""Timer: roll closed Redis counter buckets up into PostgreSQL, exactly once."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import telemetry
from shared.repositories.postgres import get_postgres
from shared.repositories.realtime import get_realtime
from shared.services.rollup import run_rollup

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.timer_trigger(arg_name="timer", schedule="0 * * * * *", run_on_startup=False)
def rollup_counters(timer: func.TimerRequest) -> None:
    with telemetry.span("rollup") as current:
        result = run_rollup(get_realtime(), get_postgres())
        current.set_attribute("activity.claims", result.claims)
        current.set_attribute("activity.rows", result.rows)
    log.info(
        "rolled up %d claims (%d committed, %d rows)", result.claims, result.committed, result.rows
    )
