"""HTTP route templates with ASP.NET Core semantics, which the Functions host uses.

Supported: literal segments (case-insensitive), `{name}`, constraints
`{id:int}`, `{id:guid}`, `{name:alpha}`, `{n:int:min(1)}` ... (see `_CONSTRAINTS`),
optional `{name?}` and defaulted `{name=value}` trailing parameters, catch-all
`{*rest}`, and segments mixing text and parameters (`{name}.{ext}`).
When several templates match, the most specific wins as in ASP.NET: literal
before constrained parameter before plain parameter before catch-all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")
Check = Callable[[str], bool]

_NUMBER = re.compile(r"\s*[+-]?\d+\s*")
_ALPHA = re.compile(r"[A-Za-z]+")
_CONSTRAINT = re.compile(r":(?P<name>[A-Za-z]+)")

# Precedence digits per segment kind, lower is more specific (ASP.NET's inbound precedence).
_LITERAL, _COMPLEX, _CONSTRAINED, _PLAIN, _CATCH_ALL = 1, 2, 3, 4, 5


class RouteError(ValueError):
    """A route template the host would reject."""


def _integer_within(bits: int) -> Check:
    limit = 2 ** (bits - 1)

    def check(value: str) -> bool:
        return bool(_NUMBER.fullmatch(value)) and -limit <= int(value) < limit

    return check


def _is_guid(value: str) -> bool:
    if value.lower().startswith("urn:"):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_float(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return number == number and abs(number) != float("inf")


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _int_args(name: str, arg: str | None, count: tuple[int, ...]) -> list[int]:
    try:
        numbers = [int(part) for part in (arg or "").split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in count:
        raise RouteError(f"constraint '{name}' needs {' or '.join(map(str, count))} integer(s)")
    return numbers


def _make_constraint(name: str, arg: str | None) -> Check:
    key = name.lower()
    simple: dict[str, Check] = {
        "int": _integer_within(32),
        "long": _integer_within(64),
        "bool": lambda v: v.lower() in ("true", "false"),
        "guid": _is_guid,
        "alpha": lambda v: bool(_ALPHA.fullmatch(v)),
        "double": _is_float,
        "float": _is_float,
        "decimal": _is_float,
        "datetime": _is_datetime,
        "required": lambda v: v != "",
    }
    if key in simple:
        return simple[key]
    if key == "regex":
        pattern = re.compile(arg or "", re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    if key in ("minlength", "maxlength", "min", "max"):
        (bound,) = _int_args(key, arg, (1,))
        return {
            "minlength": lambda v: len(v) >= bound,
            "maxlength": lambda v: len(v) <= bound,
            "min": lambda v: _integer_within(64)(v) and int(v) >= bound,
            "max": lambda v: _integer_within(64)(v) and int(v) <= bound,
        }[key]
    if key == "length":
        bounds = _int_args(key, arg, (1, 2))
        low, high = bounds[0], bounds[-1]
        return lambda v: low <= len(v) <= high
    if key == "range":
        low, high = _int_args(key, arg, (2,))
        return lambda v: _integer_within(64)(v) and low <= int(v) <= high
    raise RouteError(f"unknown route constraint '{name}'")


@dataclass(frozen=True)
class _Param:
    name: str
    checks: tuple[Check, ...]
    optional: bool
    catch_all: bool
    default: str | None

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.checks)


@dataclass(frozen=True)
class _Segment:
    pattern: re.Pattern[str]
    params: tuple[_Param, ...]
    rank: int

    @property
    def single(self) -> _Param | None:
        """The parameter when the segment is exactly one parameter."""
        return self.params[0] if self.rank in (_CONSTRAINED, _PLAIN, _CATCH_ALL) else None


def _split_parameter(body: str) -> _Param:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    optional = body.endswith("?")
    if optional:
        body = body[:-1]
    name_end = len(body)
    for stop in (":", "="):
        if stop in body:
            name_end = min(name_end, body.index(stop))
    name, rest = body[:name_end], body[name_end:]
    if not name:
        raise RouteError(f"route parameter without a name: {{{body}}}")
    checks: list[Check] = []
    default: str | None = None
    while rest:
        if rest.startswith("="):
            default, rest = rest[1:], ""
            break
        match = _CONSTRAINT.match(rest)
        if match is None:
            raise RouteError(f"cannot read the constraints of route parameter '{name}'")
        arg, rest = _constraint_argument(rest[match.end() :], name)
        checks.append(_make_constraint(match["name"], arg))
    return _Param(name, tuple(checks), optional or default is not None, catch_all, default)


def _constraint_argument(rest: str, name: str) -> tuple[str | None, str]:
    if not rest.startswith("("):
        return None, rest
    depth = 0
    for index, char in enumerate(rest):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return rest[1:index], rest[index + 1 :]
    raise RouteError(f"unbalanced parentheses in the constraint of '{name}'")


def _tokens(segment: str) -> list[str | _Param]:
    """Split a template segment into literal text and parameters (`{{` escapes a brace)."""
    tokens: list[str | _Param] = []
    text = ""
    index = 0
    while index < len(segment):
        char = segment[index]
        if segment.startswith(("{{", "}}"), index):
            text += char
            index += 2
            continue
        if char == "}":
            raise RouteError(f"unmatched '}}' in route segment '{segment}'")
        if char != "{":
            text += char
            index += 1
            continue
        depth, end = 0, index
        while end < len(segment):
            depth += {"{": 1, "}": -1}.get(segment[end], 0)
            if depth == 0:
                break
            end += 1
        if depth:
            raise RouteError(f"unmatched '{{' in route segment '{segment}'")
        if text:
            tokens.append(text)
            text = ""
        # Inside a parameter, doubled braces are escaped ones, as in `{code:regex(^\d{{3}}$)}`.
        body = segment[index + 1 : end].replace("{{", "{").replace("}}", "}")
        tokens.append(_split_parameter(body))
        index = end + 1
    if text:
        tokens.append(text)
    return tokens


def _compile_segment(segment: str, is_last: bool) -> _Segment:
    tokens = _tokens(segment)
    params = tuple(t for t in tokens if isinstance(t, _Param))
    if len(tokens) == 1 and params:
        param = params[0]
        if param.catch_all and not is_last:
            raise RouteError("a catch-all parameter must be the last segment")
        rank = _CATCH_ALL if param.catch_all else _CONSTRAINED if param.checks else _PLAIN
        return _Segment(re.compile(r"(?P<p0>.+)", re.DOTALL), params, rank)
    if any(p.optional or p.catch_all for p in params):
        raise RouteError(f"optional and catch-all parameters must fill a whole segment: {segment}")
    pattern = ""
    for token in tokens:
        if isinstance(token, str):
            pattern += re.escape(token)
        else:
            pattern += f"(?P<p{params.index(token)}>.+?)"
    return _Segment(
        re.compile(pattern, re.IGNORECASE | re.DOTALL), params, _COMPLEX if params else _LITERAL
    )


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled route template such as `api/v1/users/{user_id:guid}`."""

    text: str
    segments: tuple[_Segment, ...]

    @classmethod
    def parse(cls, text: str) -> RouteTemplate:
        parts = text.strip().strip("/").split("/") if text.strip("/ ") else []
        if any(not p for p in parts):
            raise RouteError(f"empty segment in route '{text}'")
        segments = tuple(_compile_segment(p, i == len(parts) - 1) for i, p in enumerate(parts))
        seen_optional = False
        for segment in segments:
            single = segment.single
            if seen_optional and not (single and (single.optional or single.catch_all)):
                raise RouteError(f"only optional segments may follow an optional one: '{text}'")
            seen_optional = seen_optional or bool(single and single.optional)
        names = [p.name.lower() for s in segments for p in s.params]
        if len(names) != len(set(names)):
            raise RouteError(f"a route parameter name repeats in '{text}'")
        return cls(text, segments)

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(s.rank for s in self.segments)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """The route values when the decoded path segments match, else None."""
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            single = segment.single
            if single and single.catch_all:
                # A catch-all is implicitly optional, as in ASP.NET.
                return self._bind(single, "/".join(parts[index:]), values)
            if index >= len(parts):
                if single and single.optional:
                    if single.default is not None:
                        values[single.name] = single.default
                    continue
                return None
            found = segment.pattern.fullmatch(parts[index])
            if found is None:
                return None
            for position, param in enumerate(segment.params):
                if not param.accepts(found[f"p{position}"]):
                    return None
                values[param.name] = found[f"p{position}"]
        return values if len(parts) <= len(self.segments) else None

    @staticmethod
    def _bind(param: _Param, value: str, values: dict[str, str]) -> dict[str, str] | None:
        if not value:
            if param.default is not None:
                values[param.name] = param.default
            return values
        if not param.accepts(value):
            return None
        values[param.name] = value
        return values


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    target: T
    route_params: dict[str, str]


@dataclass(frozen=True)
class MethodNotAllowed:
    allowed: frozenset[str]


@dataclass(frozen=True)
class _Route(Generic[T]):
    template: RouteTemplate
    methods: frozenset[str] | None  # None: every method
    target: T


class Router(Generic[T]):
    """Finds the target for a method and path; most specific template first."""

    def __init__(self) -> None:
        self._routes: list[_Route[T]] = []

    def add(self, template: str, methods: Iterable[str] | None, target: T) -> None:
        allowed = frozenset(m.upper() for m in methods) if methods is not None else None
        self._routes.append(_Route(RouteTemplate.parse(template), allowed, target))
        # Stable sort: among equally specific templates, registration order decides.
        self._routes.sort(key=lambda r: r.template.precedence)

    def resolve(self, method: str, raw_path: str) -> RouteMatch[T] | MethodNotAllowed | None:
        """Match a raw (percent-encoded) path; MethodNotAllowed when only the method differs."""
        stripped = raw_path.strip("/")
        parts = [unquote(p) for p in stripped.split("/")] if stripped else []
        allowed: set[str] = set()
        for route in self._routes:
            values = route.template.match(parts)
            if values is None:
                continue
            if route.methods is None or method.upper() in route.methods:
                return RouteMatch(route.target, values)
            allowed |= route.methods
        return MethodNotAllowed(frozenset(allowed)) if allowed else None
