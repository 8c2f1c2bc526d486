"""Small helpers the HTTP functions share to shape responses."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
from pydantic import BaseModel

JSON = "application/json"


def json_response(
    payload: BaseModel | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    body = (
        payload.model_dump_json()
        if isinstance(payload, BaseModel)
        else json.dumps(payload, default=str, ensure_ascii=False)
    )
    return func.HttpResponse(body, status_code=status, mimetype=JSON, headers=headers)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return json_response({"error": message}, status=status, headers=headers)
