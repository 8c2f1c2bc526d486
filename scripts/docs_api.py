"""Generate the tables of docs/api.md from the code, so the contract cannot drift.

    .venv/bin/python -m scripts.docs_api          # rewrite the generated sections in place
    .venv/bin/python -m scripts.docs_api --check  # exit 1, with a diff, when they are stale

docs/api.md is hand-written prose around generated sections, each between
``<!-- generated:NAME -->`` and ``<!-- /generated -->``. Only those sections are
rewritten; everything outside them is left as written. The sources:

- the six event types: the pydantic models (``shared/models/events.py``), their
  validators, and the limits they use (``shared/limits.py``, found in the models'
  source, so each constraint names its limit);
- every HTTP route: the route declarations (``API.route(Operation(...))`` in
  ``functions/``), the OpenAPI document the app serves (``build_document``) and
  the response models;
- the access rules (``shared/services/access.py``), the PostgreSQL tables and
  merge rules (``shared/repositories/postgres.py``), the migrations (``sql/``),
  the roll-up metrics (``shared/models/rollups.py``) and every limit.

A validator or model validator this script cannot describe is an error: say
what it checks in ``VALIDATORS`` / ``MODEL_RULES`` below, so a new rule always
reaches the contract. ``tests/unit/test_docs.py`` fails when the committed doc
differs from what this script produces.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import re
import sys
import tokenize
import types
import typing
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import AwareDatetime, StringConstraints, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic.functional_validators import AfterValidator, BeforeValidator

import function_app  # noqa: F401 - importing the app declares every route
from shared import limits
from shared.models import events
from shared.models.access import AuthMode
from shared.models.rollups import ROLLUP_METRICS
from shared.repositories.postgres import privacy, tables
from shared.services.access import RULES, Rule
from shared.services.openapi import API, Operation, build_document

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "api.md"
START = re.compile(r"^<!-- generated:([a-z-]+) -->$", re.MULTILINE)
END = "<!-- /generated -->"
# Order of the route groups (OpenAPI tags); unknown tags follow, alphabetically.
TAG_ORDER = ("ingest", "realtime", "reports", "privacy", "meta", "dashboard")
# Pointers to a document outside the repository, as code comments sometimes carry them.
OUTSIDE = re.compile(r"\s*\((?:SPEC|spec)\b[^)]*\)")


# --- formatting ---------------------------------------------------------------------------


def number(value: Any) -> str:
    """A number as the doc writes it: thousands separated, floats without a needless .0."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return repr(value)


def duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count:,} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:,} seconds"


def limit_value(value: Any) -> str:
    if isinstance(value, timedelta):
        return duration(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return ", ".join(number(item) for item in value)
    return number(value)


def cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    text = text.replace("->", "→").replace("<", "&lt;").replace("|", "\\|")
    return " ".join(text.split())


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def code(text: str) -> str:
    return f"`{text}`"


def anchor(kind: str, name: str) -> str:
    return f"{kind}-{name.lower().replace('_', '-')}"


def shape_link(name: str) -> str:
    return f"[{name}](#{anchor('shape', name)})"


def rule_link(rule: Rule) -> str:
    return f"[`{rule.name}`](#{anchor('rule', rule.name)})"


# --- limits named in the models' source ------------------------------------------------------


def _limit_names(node: ast.AST) -> set[str]:
    return {
        sub.attr
        for sub in ast.walk(node)
        if isinstance(sub, ast.Attribute)
        and isinstance(sub.value, ast.Name)
        and sub.value.id == "limits"
    }


def model_limits(module: types.ModuleType) -> dict[tuple[str, str], set[str]]:
    """(class, field) -> the limits its declaration uses, through the module's aliases
    (``Seconds``, ``_text(...)``) and the validators they call."""
    tree = ast.parse(Path(str(module.__file__)).read_text())
    definitions: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                definitions[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            definitions[node.target.id] = node.value
        elif isinstance(node, ast.FunctionDef):
            definitions[node.name] = node

    def resolve(node: ast.AST, seen: frozenset[str]) -> set[str]:
        found = _limit_names(node)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in definitions and sub.id not in seen:
                found |= resolve(definitions[sub.id], seen | {sub.id})
        return found

    out: dict[tuple[str, str], set[str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                names = resolve(item.annotation, frozenset())
                if item.value is not None:
                    names |= resolve(item.value, frozenset())
                out[(node.name, item.target.id)] = names
    return out


# --- describing a field from its annotation -----------------------------------------------


def _when(text: str) -> str:
    return text.format(
        min_time=limits.MIN_EVENT_TIME.date().isoformat(),
        skew=duration(limits.MAX_FUTURE_SKEW),
        depth=limits.MAX_ANSWERS_DEPTH,
        chars=number(limits.MAX_ANSWERS_JSON_CHARS),
    )


# What each field validator checks, by function name (a new one must be described here).
VALIDATORS: dict[str, str] = {
    "_require_iso_string": "ISO 8601 with a time zone",
    "_check_time_range": "from {min_time} (`MIN_EVENT_TIME`) to {skew} in the future "
    "(`MAX_FUTURE_SKEW`)",
    "_storable": "no NUL character, no unpaired surrogate",
    "_name": "no control character, no unpaired surrogate",
    "_check_answers": "each answer any JSON value nested at most {depth} levels "
    "(`MAX_ANSWERS_DEPTH`), no NUL or unpaired surrogate in it; the whole object at most "
    "{chars} characters as compact JSON (`MAX_ANSWERS_JSON_CHARS`)",
}

# What each model validator checks, by method name (the error names the field to fix).
MODEL_RULES: dict[str, str] = {
    "_completed_after_started": "`completed_at`, when present, must not be before "
    "`started_at` (error on `completed_at`).",
    "_fields_for_action": "`content` is required for `post` and `reply` and must be absent "
    "for `like`; `parent_post_id` is required for `reply` and must be absent otherwise.",
    "_summary_for_update": "`changes_summary` is required when `action` is `updated` "
    "(optional for `created`).",
    "_left_after_joined": "`left_at`, when present, must not be before `joined_at` "
    "(error on `left_at`).",
}

PLACE = {"": "", "item": "each item: ", "key": "each key: ", "value": "each value: "}


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(names)
    if origin is typing.Literal:
        return "one of " + ", ".join(f'`"{v}"`' for v in typing.get_args(annotation))
    if origin is list:
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"object ({_type_name(key)} → {_type_name(value)})"
    simple: dict[Any, str] = {
        uuid.UUID: "UUID",
        AwareDatetime: "timestamp",
        int: "integer",
        float: "number",
        bool: "boolean",
        str: "string",
        Any: "any JSON value",
    }
    if annotation in simple:
        return simple[annotation]
    raise ValueError(f"describe the type {annotation!r} in scripts/docs_api.py")


def _constraints(annotation: Any, metadata: list[Any], place: str) -> Iterator[tuple[str, Any]]:
    """(place, constraint) for every constraint and validator, wherever it sits."""
    for item in metadata:
        if isinstance(item, FieldInfo):
            yield from _constraints(Any, list(item.metadata), place)
        else:
            yield place, item
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _constraints(args[0], list(annotation.__metadata__), place)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is not type(None):
                yield from _constraints(arg, [], place)
    elif origin is list:
        yield from _constraints(args[0], [], "item")
    elif origin is dict:
        yield from _constraints(args[0], [], "key")
        yield from _constraints(args[1], [], "value")


def _named(value: Any, names: set[str]) -> str:
    found = sorted(n for n in names if getattr(limits, n) == value)
    text = number(value)
    return f"{text} ({', '.join(code(n) for n in found)})" if found else text


def field_rules(
    annotation: Any, metadata: list[Any], names: set[str]
) -> tuple[list[str], list[str]]:
    """(rules, validator texts) of one field, each naming the limit it comes from."""
    bounds: dict[str, dict[str, Any]] = {}
    checks: list[str] = []
    for place, item in _constraints(annotation, metadata, ""):
        bound = bounds.setdefault(place, {})
        if isinstance(item, annotated_types.Ge):
            bound["min"] = item.ge
        elif isinstance(item, annotated_types.Le):
            bound["max"] = item.le
        elif isinstance(item, annotated_types.MinLen):
            bound["min_len"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            bound["max_len"] = item.max_length
        elif isinstance(item, StringConstraints):
            if item.min_length is not None:
                bound["min_len"] = item.min_length
            if item.max_length is not None:
                bound["max_len"] = item.max_length
            if item.pattern is not None:
                raise ValueError("describe string patterns in scripts/docs_api.py")
        elif isinstance(item, AfterValidator | BeforeValidator):
            name = getattr(item.func, "__name__", repr(item.func))
            if name not in VALIDATORS:
                raise ValueError(f"describe the validator {name} in scripts/docs_api.py VALIDATORS")
            text = PLACE[place] + _when(VALIDATORS[name])
            if text not in checks:
                checks.append(text)
        # Strict, AllowInfNan and descriptions need no words: types are strict, numbers finite.
    rules: list[str] = []
    for place, bound in bounds.items():
        prefix = PLACE[place]
        if "min" in bound or "max" in bound:
            rules.append(prefix + _span(bound.get("min"), bound.get("max"), names, ""))
        if "min_len" in bound or "max_len" in bound:
            unit = " " + _unit(annotation, place)
            rules.append(prefix + _span(bound.get("min_len"), bound.get("max_len"), names, unit))
    return rules, checks


def _span(low: Any, high: Any, names: set[str], unit: str) -> str:
    """``low to high``, ``at least low`` or ``at most high`` (with the unit, if any)."""
    if low is not None and high is not None:
        return f"{_named(low, names)} to {_named(high, names)}{unit}"
    if low is not None:
        return f"at least {_named(low, names)}{unit}"
    return f"at most {_named(high, names)}{unit}"


def _unit(annotation: Any, place: str) -> str:
    """What a length at ``place`` counts: characters of a string, items or entries."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _unit(args[0], place)
    if origin in (typing.Union, types.UnionType):
        return _unit(next(a for a in args if a is not type(None)), place)
    if place == "":
        return {str: "characters", list: "items", dict: "entries"}[origin or annotation]
    if origin is list and place == "item":
        return _unit(args[0], "")
    if origin is dict and place == "key":
        return _unit(args[0], "")
    if origin is dict and place == "value":
        return _unit(args[1], "")
    raise ValueError(f"describe lengths of {annotation!r} at {place!r} in scripts/docs_api.py")


# --- sections -----------------------------------------------------------------------------


def _event_type(model: type[events.ActivityEvent]) -> str:
    return str(typing.get_args(model.model_fields["type"].annotation)[0])


def section_event_types() -> str:
    rows = []
    for model in events.EVENT_MODELS:
        kind = _event_type(model)
        others = ", ".join(code(f) for f in model.subject_fields) or "-"
        rows.append(
            (
                f"[`{kind}`](#{anchor('event', kind)})",
                cell(model.__doc__ or ""),
                code(model.actor_field),
                code(model.time_field),
                others,
            )
        )
    return table(
        ("type", "what", "acting user", "event time", "also names"),
        rows,
    )


def _required(info: FieldInfo) -> str:
    if info.is_required():
        return "yes"
    return "no (absent or null)"


GENERIC = {"UUID", "ISO 8601 timestamp with a time zone (stored in UTC)"}


def section_events() -> str:
    found = model_limits(events)
    parts = []
    for model in events.EVENT_MODELS:
        kind = _event_type(model)
        rows = []
        for name, info in model.model_fields.items():
            if name == "type":
                rows.append((code("type"), code(f'"{kind}"'), "yes", "the discriminator"))
                continue
            names = found.get((model.__name__, name)) or found.get(("ActivityEvent", name), set())
            rules, checks = field_rules(info.annotation, list(info.metadata), names)
            notes = []
            if info.description and info.description not in GENERIC:
                # A description that repeats the limits in words: the rules below say them.
                notes.append(info.description.split(" (")[0] if checks else info.description)
            notes += rules + checks
            rows.append(
                (
                    code(name),
                    _type_name(info.annotation),
                    _required(info),
                    cell("; ".join(notes)) or "-",
                )
            )
        validators = model.__pydantic_decorators__.model_validators
        cross = []
        for method in validators:
            if method not in MODEL_RULES:
                raise ValueError(f"describe {model.__name__}.{method} in MODEL_RULES")
            cross.append(f"- {MODEL_RULES[method]}")
        head = (
            f'<a id="{anchor("event", kind)}"></a>\n\n#### `{kind}`\n\n'
            f"{model.__doc__} Acting user `{model.actor_field}`, event time "
            f"`{model.time_field}`."
        )
        body = table(("field", "type", "required", "rules"), rows)
        parts.append(head + "\n\n" + body + ("\n\n" + "\n".join(cross) if cross else ""))
    return "\n\n".join(parts)


def _op(name: str) -> Operation:
    return next(op for op in API.operations if op.name == name)


def _document() -> dict[str, Any]:
    return build_document(mode=AuthMode.KEYS)


def _response_rows(op: Operation) -> list[tuple[str, str, str]]:
    doc = _document()["paths"][op.path][op.method]
    rows = []
    for status, response in doc["responses"].items():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        ref = schema.get("$ref", "")
        shape = shape_link(ref.rsplit("/", 1)[-1]) if ref else "-"
        rows.append((status, cell(response["description"]), shape))
    return rows


def section_request() -> str:
    rows = [
        ("method and path", "`POST /api/v1/events`"),
        ("`Content-Type`", "`application/json` (a `charset` parameter is allowed)"),
        (
            "body",
            'one event object (it has `"type"`), or `{"events": [event, ...]}` and nothing else',
        ),
        (
            "events per request",
            f"1 to {number(limits.MAX_EVENTS_PER_REQUEST)} (`MAX_EVENTS_PER_REQUEST`)",
        ),
        (
            "body size",
            f"at most {number(limits.MAX_REQUEST_BYTES)} bytes, 1 MiB (`MAX_REQUEST_BYTES`)",
        ),
        ("access rule", rule_link(_op("ingest_events").rule)),
    ]
    return table(("", "the rule"), rows)


def section_answers() -> str:
    op = _op("ingest_events")
    return table(("status", "when", "body"), _response_rows(op))


def section_rules() -> str:
    rows = []
    for rule in RULES:
        routes = [op for op in _ordered_operations() if op.rule is rule]
        rows.append(
            (
                f'<a id="{anchor("rule", rule.name)}"></a>`{rule.name}`',
                cell(rule.text),
                rule.target or "-",
                "yes" if rule.student else "-",
                "yes" if rule.teacher else "-",
                ", ".join(f"[{op.name}](#{anchor('route', op.name)})" for op in routes) or "-",
            )
        )
    return table(
        ("rule", "what it allows a person", "judges", "Student", "Teacher", "routes"),
        rows,
    )


def _ordered_operations() -> list[Operation]:
    def key(op: Operation) -> tuple[int, str, int]:
        tag = op.tags[0] if op.tags else ""
        rank = TAG_ORDER.index(tag) if tag in TAG_ORDER else len(TAG_ORDER)
        return rank, tag, API.operations.index(op)

    return sorted(API.operations, key=key)


def section_routes() -> str:
    rows = []
    for op in _ordered_operations():
        rows.append(
            (
                f"[`{op.method.upper()} {op.path}`](#{anchor('route', op.name)})",
                op.level,
                rule_link(op.rule),
                cell(op.summary),
            )
        )
    return table(("route", "key level", "access rule", "what"), rows)


def _parameter_schema(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "")
    if schema.get("format") == "uuid":
        text = "UUID"
    elif schema.get("format") == "date-time":
        text = "timestamp"
    elif "enum" in schema:
        text = "one of " + ", ".join(code(v) for v in schema["enum"])
    else:
        text = kind
    if "minimum" in schema and "maximum" in schema:
        text += f", {number(schema['minimum'])} to {number(schema['maximum'])}"
    if "default" in schema:
        text += f", default {code(str(schema['default']))}"
    return text


def section_route_details() -> str:
    document = _document()
    parts = []
    for op in _ordered_operations():
        doc = document["paths"][op.path][op.method]
        facts = [
            f"Key level `{op.level}`; access rule {rule_link(op.rule)}"
            + (f" on `{op.target}`" if op.target else "")
            + "."
        ]
        if op.discloses:
            facts.append(f"A successful read is recorded in the access log as `{op.discloses}`.")
        if op.live_view:
            facts.append(
                "A live view: the answer carries an `ETag`; `If-None-Match` with it answers `304`."
            )
        if op.request:
            facts.append("Body: one event or a batch, see [Sending events](#sending-events).")
        text = (
            f'<a id="{anchor("route", op.name)}"></a>\n\n'
            f"#### `{op.method.upper()} {op.path}`\n\n"
            f"{op.summary} (`{op.name}`). " + " ".join(facts)
        )
        params = doc.get("parameters", [])
        if params:
            rows = [
                (
                    code(p["name"]),
                    p["in"],
                    _parameter_schema(p["schema"]),
                    cell(p.get("description", "")) or "-",
                )
                for p in params
            ]
            text += "\n\n" + table(("parameter", "in", "type", "meaning"), rows)
        text += "\n\n" + table(("status", "when", "body"), _response_rows(op))
        parts.append(text)
    return "\n\n".join(parts)


# --- response shapes ----------------------------------------------------------------------


def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return shape_link(schema["$ref"].rsplit("/", 1)[-1])
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = len(options) < len(schema["anyOf"])
        text = " or ".join(_schema_type(s) for s in options)
        return f"{text} or null" if nullable else text
    if "const" in schema:
        return code(f'"{schema["const"]}"')
    if "enum" in schema:
        return "one of " + ", ".join(code(f'"{v}"') for v in schema["enum"])
    kind = schema.get("type")
    fmt = schema.get("format")
    if kind == "string" and fmt == "uuid":
        return "UUID"
    if kind == "string" and fmt == "date-time":
        return "timestamp"
    if kind == "string" and fmt == "date":
        return "date"
    if kind == "array":
        return f"list of {_schema_type(schema.get('items', {}))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return f"object (string → {_schema_type(extra)})"
        return "object"
    if kind in ("string", "integer", "number", "boolean"):
        return str(kind)
    if not schema:
        return "any JSON value"
    raise ValueError(f"describe the schema {schema!r} in scripts/docs_api.py")


def _route_shapes() -> list[str]:
    """The shapes the routes answer with, in route order, nested ones after their parent."""
    document = _document()
    names: list[str] = []
    for op in _ordered_operations():
        doc = document["paths"][op.path][op.method]
        for response in doc["responses"].values():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            ref = schema.get("$ref")
            if ref:
                name = ref.rsplit("/", 1)[-1]
                if name not in names and name != "IngestRequest":
                    names.append(name)
    return names


def _model_schema(name: str) -> dict[str, Any]:
    source = API.schemas[name]
    template = "#/$defs/{model}"
    if isinstance(source, TypeAdapter):
        return source.json_schema(ref_template=template)
    return source.model_json_schema(ref_template=template)


def section_shapes() -> str:
    parts = []
    done: set[str] = set()
    queue = _route_shapes()
    defs: dict[str, dict[str, Any]] = {}
    while queue:
        name = queue.pop(0)
        if name in done:
            continue
        done.add(name)
        schema = defs.get(name) or _model_schema(name)
        defs.update(schema.pop("$defs", {}))
        rows = []
        nested = []
        for field, prop in schema.get("properties", {}).items():
            rows.append((code(field), _schema_type(prop), cell(prop.get("description", "")) or "-"))
            for sub in re.findall(r"#/\$defs/(\w+)", str(prop)):
                if sub not in done and sub not in nested:
                    nested.append(sub)
        queue[:0] = nested
        intro = cell(schema.get("description", "")) if name in defs else ""
        title = f'<a id="{anchor("shape", name)}"></a>\n\n#### {name}'
        body = table(("field", "type", "meaning"), rows)
        parts.append(title + ("\n\n" + intro if intro else "") + "\n\n" + body)
    return "\n\n".join(parts)


# --- storage ------------------------------------------------------------------------------


def section_tables() -> str:
    rows = []
    merged = {spec.model: spec for spec in tables.MERGED_TABLES}
    for model in events.EVENT_MODELS:
        kind = _event_type(model)
        if model in tables.HISTORY_TABLES:
            name = tables.HISTORY_TABLES[model]
            natural = tables.NATURAL_KEYS.get(model)
            per = f"unique `{natural[0]}`" if natural else "unique event"
            partitioned = (
                f"monthly on `{model.time_field}`" if name in privacy.PARTITIONED_HISTORY else "no"
            )
            rows.append((code(kind), code(name), per, partitioned))
        if model in merged:
            spec = merged[model]
            key = "(" + ", ".join(spec.key) + ")"
            rows.append((code(kind), code(spec.table), f"{key}, merged (below)", "no"))
    return table(("event type", "table", "one row per", "partitioned"), rows)


MERGE_WORDS = {
    tables.Merge.MIN: "smallest non-null (`LEAST`)",
    tables.Merge.MAX: "largest non-null (`GREATEST`)",
    tables.Merge.UNION: "union of the arrays, distinct and sorted",
    tables.Merge.LATEST: "from the event with the greatest ({by}, event_id)",
}


def section_merges() -> str:
    rows = []
    for spec in tables.MERGED_TABLES:
        for column, rule in spec.rules.items():
            words = MERGE_WORDS[rule].format(by=spec.latest_by)
            rows.append((code(spec.table), code(column), rule.value, words))
    return table(("table", "column", "rule", "result"), rows)


_SQL_OBJECTS = (
    (re.compile(r"^CREATE TABLE (\w+)", re.M | re.I), "tables"),
    (re.compile(r"^ALTER TABLE (\w+)", re.M | re.I), "alters"),
    (re.compile(r"^CREATE (?:OR REPLACE )?FUNCTION (\w+)", re.M | re.I), "functions"),
    (re.compile(r"^CREATE (?:UNIQUE )?INDEX (\w+)", re.M | re.I), "indexes"),
    (re.compile(r"^DROP INDEX (?:IF EXISTS )?(\w+)", re.M | re.I), "drops index"),
    (re.compile(r"^CREATE (?:OR REPLACE )?TRIGGER (\w+)", re.M | re.I), "triggers"),
)


# Objects counted rather than named: (plural, singular).
COUNTED = {"indexes": ("indexes", "index"), "triggers": ("triggers", "trigger")}


def section_migrations() -> str:
    rows = []
    for path in sorted((ROOT / "sql").glob("*.sql")):
        sql = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("--"))
        what = []
        for pattern, label in _SQL_OBJECTS:
            found = list(dict.fromkeys(m.group(1) for m in pattern.finditer(sql)))
            if label == "tables":
                found = [
                    name
                    for name in found
                    if not re.search(rf"CREATE TABLE {name}\s+PARTITION OF", sql, re.I)
                ]
            if not found:
                continue
            if label in COUNTED:
                what.append(f"{len(found)} {COUNTED[label][len(found) == 1]}")
            else:
                what.append(f"{label}: " + ", ".join(code(name) for name in found))
        rows.append((f"[`{path.name}`](../sql/{path.name})", "; ".join(what) or "-"))
    return table(("migration", "creates or changes"), rows)


def section_rollups() -> str:
    rows = [(code(metric), dimension) for metric, dimension in ROLLUP_METRICS.items()]
    return table(("metric", "dimension"), rows)


def _limit_comments() -> Iterator[tuple[str, str, str]]:
    """(group, name, comment) of every limit, in file order, from shared/limits.py."""
    source = Path(str(limits.__file__)).read_text()
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    group = ""
    lines = source.splitlines()
    tree = ast.parse(source)
    previous_end = 0
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if not isinstance(target, ast.Name) or not target.id.isupper():
            continue
        above: list[str] = []
        for line in range(previous_end + 1, node.lineno):
            text = comments.get(line)
            if text is None:
                if not lines[line - 1].strip():
                    above = []
                continue
            header = re.fullmatch(r"-+\s*(.*?)\s*-+", text)
            if header:
                group = OUTSIDE.sub("", header.group(1)).replace("->", "→")
                above = []
            else:
                above.append(text)
        inline = comments.get(node.lineno, "")
        end = node.end_lineno or node.lineno
        previous_end = end
        comment = " ".join([*above, inline]).strip()
        yield group, target.id, OUTSIDE.sub("", comment)


def section_limits() -> str:
    parts = []
    current = None
    rows: list[tuple[str, ...]] = []
    for group, name, comment in _limit_comments():
        if group != current:
            if rows:
                parts.append(table(("limit", "value", "meaning"), rows))
            parts.append(f"**{group[0].upper() + group[1:]}**" if group else "")
            current, rows = group, []
        rows.append((code(name), limit_value(getattr(limits, name)), cell(comment) or "-"))
    if rows:
        parts.append(table(("limit", "value", "meaning"), rows))
    return "\n\n".join(part for part in parts if part)


SECTIONS: dict[str, Callable[[], str]] = {
    "event-types": section_event_types,
    "request": section_request,
    "events": section_events,
    "answers": section_answers,
    "rules": section_rules,
    "routes": section_routes,
    "route-details": section_route_details,
    "shapes": section_shapes,
    "tables": section_tables,
    "merges": section_merges,
    "migrations": section_migrations,
    "rollups": section_rollups,
    "limits": section_limits,
}


# --- the document -------------------------------------------------------------------------


def generated_names(text: str) -> list[str]:
    return START.findall(text)


def render(text: str) -> str:
    """``text`` with every generated section replaced by what the code says now."""
    out: list[str] = []
    position = 0
    for match in START.finditer(text):
        name = match.group(1)
        if name not in SECTIONS:
            raise ValueError(f"docs/api.md: unknown generated section {name!r}")
        end = text.find(END, match.end())
        if end < 0:
            raise ValueError(f"docs/api.md: section {name!r} has no {END}")
        out.append(text[position : match.end()])
        out.append("\n" + SECTIONS[name]().strip() + "\n")
        position = end
    out.append(text[position:])
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when stale")
    args = parser.parse_args(argv)
    current = DOC.read_text()
    fresh = render(current)
    missing = set(SECTIONS) - set(generated_names(current))
    if missing:
        print(f"docs/api.md lacks generated sections: {', '.join(sorted(missing))}")
        return 1
    if fresh == current:
        return 0
    if args.check:
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                fresh.splitlines(keepends=True),
                "docs/api.md",
                "generated",
            )
        )
        print("docs/api.md is stale: run .venv/bin/python -m scripts.docs_api")
        return 1
    DOC.write_text(fresh)
    print("docs/api.md: generated sections rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
