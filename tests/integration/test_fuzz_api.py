"""Every HTTP endpoint fuzzed from the OpenAPI document the app serves
(schemathesis), against the session host and the real stores, with a fixed
budget: no 5xx but the documented 503, and every 4xx explains itself in JSON.

Derandomized, so a failure reproduces; the whole module runs in well under 90 s.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from devhost import DevHost
from tests import factories as f
from tests.integration.conftest import MASTER_KEY

# Small enough to keep the module fast, large enough to reach every parameter.
EXAMPLES = 12

schema = schemathesis.pytest.from_fixture("served_schema")

# Who calls (SPEC 10): nobody but the key, a person of each role, or garbage in
# X-MS-CLIENT-PRINCIPAL (the session host passes client principals through).
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _HEADER_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_HEADER_TEXT, inner, max_size=4),
    max_leaves=12,
)
PRINCIPALS = st.one_of(
    st.none(),
    st.builds(
        f.principal,
        st.uuids().map(str),
        st.sampled_from(["Student", "Teacher", "Admin", "Service", "Janitor"]),
    ),
    _HEADER_TEXT,
    st.binary(max_size=200).map(lambda raw: base64.b64encode(raw).decode()),
    _JSON.map(lambda doc: base64.b64encode(json.dumps(doc).encode()).decode()),
    st.builds(
        lambda claims: base64.b64encode(json.dumps({"claims": claims}).encode()).decode(),
        st.lists(
            st.fixed_dictionaries(
                {"typ": st.sampled_from([f.OBJECT_ID, "roles", "name"]), "val": _HEADER_TEXT}
            )
            | st.just({"typ": f.OBJECT_ID, "val": str(uuid.uuid4())}),
            max_size=5,
        ),
    ),
)


@pytest.fixture(scope="module")
def served_schema(host: DevHost) -> Any:
    document = httpx.get(host.url("v1/openapi.json"), timeout=30).json()
    return schemathesis.openapi.from_dict(document)


def explain(case: Any, response: Any) -> str:
    return f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"


@schema.parametrize()
@schema.given(principal=PRINCIPALS)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_endpoint_answers_any_input_without_a_server_error(
    case: Any, principal: str | None, host: DevHost
) -> None:
    # The master key satisfies every auth level: the fuzzing reaches the code.
    # (The generated case may carry a key header of its own: the document
    # declares it; keys themselves are tested in test_privacy_api.py.) A
    # principal narrows it to a person, or is refused as unusable.
    case.headers = {**(case.headers or {}), "x-functions-key": MASTER_KEY}
    if principal is not None:
        case.headers["X-MS-CLIENT-PRINCIPAL"] = principal
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
