"""Every HTTP endpoint fuzzed from the OpenAPI document the app serves
(schemathesis), against the session host and the real stores, with a fixed
budget: no 5xx but the documented 503, and every 4xx explains itself in JSON.

Derandomized, so a failure reproduces; the whole module runs in well under 90 s.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from devhost import DevHost
from tests.integration.conftest import MASTER_KEY

# Small enough to keep the module fast, large enough to reach every parameter.
EXAMPLES = 12

schema = schemathesis.pytest.from_fixture("served_schema")


@pytest.fixture(scope="module")
def served_schema(host: DevHost) -> Any:
    document = httpx.get(host.url("v1/openapi.json"), timeout=30).json()
    return schemathesis.openapi.from_dict(document)


def explain(case: Any, response: Any) -> str:
    return f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_endpoint_answers_any_input_without_a_server_error(case: Any, host: DevHost) -> None:
    # The master key satisfies every auth level: the fuzzing reaches the code.
    # (The generated case may carry a key header of its own: the document
    # declares it; keys themselves are tested in test_privacy_api.py.)
    case.headers = {**(case.headers or {}), "x-functions-key": MASTER_KEY}
    response = case.call(base_url=host.base_url)
    status = response.status_code
    documented = case.operation.definition.raw.get("responses", {})
    assert status < 500 or (status == 503 and "503" in documented), explain(case, response)
    if not 400 <= status < 500:
        return
    if status in (404, 405) and not response.content:
        # The host's router refused the path before the app ran (Azure answers
        # the same way for a route that matches no function).
        return
    try:
        body = json.loads(response.text)
    except ValueError:
        pytest.fail(f"a 4xx without a JSON body: {explain(case, response)}")
    if status == 422 and case.path == "/api/v1/events":
        assert body["accepted"] == 0, explain(case, response)
        messages = [error["message"] for item in body["rejected"] for error in item["errors"]]
        assert messages, explain(case, response)
        assert all(messages), explain(case, response)
    else:
        assert isinstance(body.get("error"), str), explain(case, response)
        assert len(body["error"]) > 5, explain(case, response)
