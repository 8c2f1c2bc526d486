"""Telemetry is off locally and on with Application Insights' connection string."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import function_app
from opentelemetry import metrics, trace
import psycopg
print(type(trace.get_tracer_provider()).__name__)
print(type(metrics.get_meter_provider()).__name__)
print(getattr(psycopg.connect, "__wrapped__", None) is not None or "Instrumented" in repr(psycopg))
"""


def probe(**environ: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    answer = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env | environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return answer.stdout.split()


def test_without_a_connection_string_nothing_is_set_up() -> None:
    assert probe() == ["ProxyTracerProvider", "_ProxyMeterProvider", "False"]


def test_with_one_the_azure_monitor_distro_exports_and_psycopg_is_instrumented() -> None:
    # An ingestion endpoint nobody listens on: set-up must not need the network.
    connection = (
        "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        "IngestionEndpoint=http://127.0.0.1:9/;LiveEndpoint=http://127.0.0.1:9/"
    )
    tracer, meter, instrumented = probe(APPLICATIONINSIGHTS_CONNECTION_STRING=connection)
    assert (tracer, meter, instrumented) == ("TracerProvider", "MeterProvider", "True")
