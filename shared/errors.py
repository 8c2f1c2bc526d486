"""The failures a caller can act on, as the services and repositories raise them.

Nothing here knows HTTP: the function layer maps each error to its answer in
one place (``shared.http.handle`` for the handlers' errors; the caller and
access-rule errors in ``functions.routing``, which also records refusals in
the access log). The message is the answer's ``{"error": ...}`` text, so it
names the value and the rule it breaks.
"""

from __future__ import annotations


class DomainError(Exception):
    """An expected failure; ``message`` is what the caller is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """A value breaks a rule: ``field`` names the value, ``rule`` the rule broken."""

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class TooLarge(InvalidInput):
    """A request over a size or count limit."""


class UnsupportedMediaType(InvalidInput):
    """A request body in a media type the operation does not read."""


class NotFound(DomainError):
    """Nothing is known about the requested resource: ``what`` and its ``key``."""

    def __init__(self, message: str, *, what: str | None = None, key: object = None) -> None:
        super().__init__(message)
        self.what = what
        self.key = key


class Unauthenticated(DomainError):
    """No caller where the route needs one."""


class InvalidPrincipal(DomainError):
    """The signed-in principal cannot be used: malformed, no usable id, no known role."""


class AccessDenied(DomainError):
    """An access rule refused the caller; ``rule`` names the rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
