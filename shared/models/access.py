"""Who is calling (SPEC 10): a person signed in through App Service
Authentication, or a program holding a function key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """The app roles a principal may carry (Entra ID app-role values)."""

    STUDENT = "Student"
    TEACHER = "Teacher"
    ADMIN = "Admin"
    SERVICE = "Service"


class AuthMode(StrEnum):
    """``AUTH_MODE``: what the host checks before the app does."""

    KEYS = "keys"  # routes at function/admin level; a principal narrows what the key allows
    PRINCIPAL = "principal"  # routes anonymous at the host; a principal is required


@dataclass(frozen=True)
class Principal:
    """A person (or a program signed in as one) named by ``X-MS-CLIENT-PRINCIPAL``."""

    user_id: uuid.UUID
    name: str | None
    roles: frozenset[Role]
    auth_typ: str | None = None


@dataclass(frozen=True)
class Caller:
    """Whoever sent a request, as the rules and the access log see them."""

    principal: Principal | None
    roles: frozenset[Role]
    accessor: str  # how the access log names the caller (never a key itself)

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.principal.user_id if self.principal else None

    def has(self, role: Role) -> bool:
        return role in self.roles
