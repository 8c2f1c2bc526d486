"""Response shapes of the privacy operations (SPEC 9): erasure, export, disclosures."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class ErasedCounts(BaseModel):
    postgres: int
    archive: int
    realtime: int


class ErasureResponse(BaseModel):
    user_id: uuid.UUID
    erased: ErasedCounts
    erased_at: datetime


class ExportPage(BaseModel):
    user_id: uuid.UUID
    postgres: dict[str, list[dict[str, Any]]]
    archive: list[dict[str, Any]]
    realtime: dict[str, Any] | None
    next_cursor: str | None


class Disclosure(BaseModel):
    accessor: str = Field(
        description="who: the principal (name, id, roles) or the key level and a fingerprint"
    )
    action: str
    resource: str
    accessed_at: datetime
    outcome: Literal["disclosed", "refused"] = "disclosed"
    rule: str | None = Field(default=None, description="the access rule that refused it")


class Disclosures(BaseModel):
    user_id: uuid.UUID
    disclosures: list[Disclosure]
    next_cursor: str | None
