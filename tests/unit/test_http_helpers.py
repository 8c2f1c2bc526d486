"""shared.http: parameter rules and how failures become answers."""

from __future__ import annotations

import json

import azure.functions as func
import psycopg
import pytest

from shared.errors import InvalidInput, NotFound
from shared.http import handle, path_uuid, query_int


def request(
    route: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> func.HttpRequest:
    return func.HttpRequest(
        "GET", "http://x/api/y", route_params=route or {}, params=params or {}, body=b""
    )


def raising(exc: Exception) -> func.HttpResponse:
    raise exc


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (InvalidInput("limit must be from 1 to 100"), 400),
        (NotFound("no live session"), 404),
        (psycopg.OperationalError("connection refused"), 503),
        (psycopg.errors.UndefinedTable("relation x does not exist"), 503),
    ],
)
def test_failures_become_clear_answers(exc: Exception, status: int) -> None:
    response = handle(lambda: raising(exc))
    assert response.status_code == status
    assert json.loads(response.get_body())["error"]
    if status == 503:
        assert response.headers["Retry-After"]


def test_path_uuid_and_query_int_rules() -> None:
    with pytest.raises(InvalidInput, match="student_id must be a UUID"):
        path_uuid(request(route={"student_id": "1; DROP TABLE x"}), "student_id")
    assert query_int(request(), "limit", 10, 1, 100) == 10
    assert query_int(request(params={"limit": "7"}), "limit", 10, 1, 100) == 7
    with pytest.raises(InvalidInput, match="from 1 to 100"):
        query_int(request(params={"limit": "0"}), "limit", 10, 1, 100)
    with pytest.raises(InvalidInput, match="integer"):
        query_int(request(params={"limit": "1e3"}), "limit", 10, 1, 100)
