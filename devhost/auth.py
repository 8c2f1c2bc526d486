"""Function keys: the auth levels Azure enforces, enforced locally when keys are configured."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

FUNCTION_KEY_SETTING = "LOCAL_FUNCTION_KEY"
MASTER_KEY_SETTING = "LOCAL_MASTER_KEY"
KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"

ANONYMOUS, FUNCTION, ADMIN = "anonymous", "function", "admin"


def normalise_auth_level(level: Any) -> str:
    """`AuthLevel.FUNCTION`, "FUNCTION" or "function" -> "function"."""
    text = str(level.value if isinstance(level, Enum) else level).lower()
    if text not in (ANONYMOUS, FUNCTION, ADMIN):
        raise ValueError(f"unknown auth level {level!r}")
    return text


@dataclass(frozen=True)
class Keys:
    """The configured keys; with none configured nothing is enforced (as under func start)."""

    function_key: str | None = None
    master_key: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Keys:
        function_key = environ.get(FUNCTION_KEY_SETTING) or None
        return cls(function_key, environ.get(MASTER_KEY_SETTING) or None)

    @property
    def enforced(self) -> bool:
        return self.function_key is not None or self.master_key is not None

    def allows(self, auth_level: str, presented: str | None) -> bool:
        """Whether a request presenting `presented` may call a function of `auth_level`."""
        if not self.enforced or auth_level == ANONYMOUS:
            return True
        if presented is None:
            return False
        if _same(presented, self.master_key):
            return True  # the master key satisfies every level
        return auth_level == FUNCTION and _same(presented, self.function_key)


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key a caller sent: header `x-functions-key`, else query `code`."""
    return headers.get(KEY_HEADER) or query.get(KEY_QUERY) or None


def _same(presented: str, expected: str | None) -> bool:
    # Constant-time comparison, so a key cannot be guessed from response timings.
    return expected is not None and hmac.compare_digest(presented.encode(), expected.encode())
