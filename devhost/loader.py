"""Index the app the way the Python worker does: import function_app.py, ask the FunctionApp.

The worker imports `function_app.py`, takes the single `FunctionRegister`
instance in it and calls `get_functions()`; each function's trigger and
bindings (the metadata a function.json would hold) decide how it runs. Here a
function whose bindings this host cannot serve is reported, not fatal, as the
real host reports a function in error and runs the others.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
from azure.functions.decorators.core import BindingDirection
from azure.functions.decorators.function_app import Function, FunctionRegister

from devhost.auth import normalise_auth_level
from devhost.ncrontab import CronSchedule, IntervalSchedule, parse_schedule
from devhost.routes import RouteTemplate
from devhost.settings import ConfigError, resolve_expression, storage_connection
from shared.settings import StorageConnection

SCRIPT_FILE = "function_app.py"
MODULE_NAME = "function_app"
RETURN = "$return"
CONTEXT_PARAM = "context"
_QUEUE_NAME = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")


class LoadError(RuntimeError):
    """The app cannot be indexed at all."""


class UnsupportedFunction(ValueError):
    """A function this host cannot run (its reason is shown at start-up)."""


@dataclass(frozen=True)
class HttpTrigger:
    route: str
    methods: frozenset[str] | None  # None: every method
    auth_level: str


@dataclass(frozen=True)
class QueueTrigger:
    queue_name: str
    connection: StorageConnection  # resolved: a connection string or identity-based


@dataclass(frozen=True)
class TimerTrigger:
    schedule: CronSchedule | IntervalSchedule
    run_on_startup: bool


@dataclass(frozen=True)
class QueueOutput:
    name: str  # parameter name, or "$return"
    queue_name: str
    connection: StorageConnection


@dataclass(frozen=True)
class HttpOutput:
    name: str


Trigger = HttpTrigger | QueueTrigger | TimerTrigger
Output = QueueOutput | HttpOutput


@dataclass(frozen=True)
class FunctionSpec:
    """Everything needed to invoke one function."""

    name: str
    user_function: Callable[..., Any]
    trigger_param: str
    trigger: Trigger
    outputs: tuple[Output, ...]
    wants_context: bool
    trigger_body_type: type  # for queue triggers: QueueMessage, str or bytes
    directory: str

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)


@dataclass
class LoadedApp:
    module: ModuleType
    app: FunctionRegister
    functions: list[FunctionSpec]
    errors: dict[str, str]  # function name -> why this host cannot run it
    added_path: str | None = None  # put on sys.path for the app; unload_app takes it off


def load_app(app_dir: Path, environ: Mapping[str, str]) -> LoadedApp:
    """Import `app_dir/function_app.py` and describe its functions."""
    added_path = None if str(app_dir) in sys.path else str(app_dir)
    try:
        module = _import_script(app_dir)
        app, indexed = _index(module)
    except BaseException:
        _remove_path(added_path)
        raise
    functions: list[FunctionSpec] = []
    errors: dict[str, str] = {}
    for function in indexed:
        name = str(function.get_function_name())
        try:
            functions.append(_describe(function, name, app_dir, environ))
        except (UnsupportedFunction, ConfigError, ValueError) as exc:
            errors[name] = str(exc)
    return LoadedApp(module, app, functions, errors, added_path)


def unload_app(loaded: LoadedApp) -> None:
    """Take the app directory off sys.path again."""
    _remove_path(loaded.added_path)


def _index(module: ModuleType) -> tuple[FunctionRegister, list[Function]]:
    apps = [v for v in vars(module).values() if isinstance(v, FunctionRegister)]
    if len(apps) != 1:
        raise LoadError(f"{SCRIPT_FILE} must define exactly one FunctionApp, found {len(apps)}")
    try:
        return apps[0], apps[0].get_functions()
    except ValueError as exc:  # e.g. two functions with one name: the worker refuses the app
        raise LoadError(f"{SCRIPT_FILE}: {exc}") from exc


def _remove_path(added_path: str | None) -> None:
    if added_path is not None and added_path in sys.path:
        sys.path.remove(added_path)


def _import_script(app_dir: Path) -> ModuleType:
    path = app_dir / SCRIPT_FILE
    if not path.is_file():
        raise LoadError(f"no {SCRIPT_FILE} in {app_dir}")
    # The worker runs with the app directory on sys.path, so the app's own packages import.
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    # A fresh module each time, as a fresh worker process would have. It is in
    # sys.modules only while it runs: afterwards `import function_app` elsewhere
    # (a test, another host) gets its own copy, not this host's app, whose
    # get_functions() the worker contract allows to be called once only.
    replaced = sys.modules.get(MODULE_NAME)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    finally:
        if replaced is None:
            sys.modules.pop(MODULE_NAME, None)
        else:
            sys.modules[MODULE_NAME] = replaced
    return module


def _describe(
    function: Function,
    name: str,
    app_dir: Path,
    environ: Mapping[str, str],
) -> FunctionSpec:
    trigger_binding = function.get_trigger()
    if trigger_binding is None:
        raise UnsupportedFunction("no trigger")
    # The binding's dict is the function.json entry the real host indexes.
    meta = trigger_binding.get_dict_repr()
    trigger = _trigger(meta, environ)
    outputs: list[Output] = []
    for binding in function.get_bindings():
        if binding is trigger_binding:
            continue
        outputs.append(_output(binding.get_dict_repr(), environ))
    user_function = function.get_user_function()
    parameters = inspect.signature(user_function).parameters
    trigger_param = str(meta["name"])
    bound = {trigger_param} | {o.name for o in outputs if o.name != RETURN}
    missing = bound - set(parameters)
    if missing:
        raise UnsupportedFunction(f"binding(s) {sorted(missing)} have no function parameter")
    unbound = set(parameters) - bound - {CONTEXT_PARAM}
    if unbound:
        raise UnsupportedFunction(f"parameter(s) {sorted(unbound)} have no binding")
    return FunctionSpec(
        name=name,
        user_function=user_function,
        trigger_param=trigger_param,
        trigger=trigger,
        outputs=tuple(outputs),
        wants_context=CONTEXT_PARAM in parameters and CONTEXT_PARAM not in bound,
        trigger_body_type=_annotation(user_function, trigger_param),
        directory=str(app_dir),
    )


def _trigger(meta: dict[str, Any], environ: Mapping[str, str]) -> Trigger:
    kind = meta.get("type")
    if kind == "httpTrigger":
        methods = meta.get("methods")
        route = str(meta.get("route") or "")
        RouteTemplate.parse(route)  # a bad template puts this function in error, as in Azure
        return HttpTrigger(
            route=route,
            methods=frozenset(_text(m).upper() for m in methods) if methods else None,
            auth_level=normalise_auth_level(meta.get("authLevel") or "function"),
        )
    if kind == "queueTrigger":
        return QueueTrigger(
            queue_name=_queue_name(meta, environ),
            connection=storage_connection(meta.get("connection"), environ),
        )
    if kind == "timerTrigger":
        schedule_text = resolve_expression(str(meta["schedule"]), environ)
        return TimerTrigger(parse_schedule(schedule_text), bool(meta.get("runOnStartup")))
    raise UnsupportedFunction(f"trigger type '{kind}' is not supported by devhost")


def _output(meta: dict[str, Any], environ: Mapping[str, str]) -> Output:
    kind, name = meta.get("type"), str(meta.get("name"))
    if kind == "http":
        return HttpOutput(name)
    if kind == "queue":
        return QueueOutput(
            name=name,
            queue_name=_queue_name(meta, environ),
            connection=storage_connection(meta.get("connection"), environ),
        )
    direction = "output" if meta.get("direction") == BindingDirection.OUT else "input"
    raise UnsupportedFunction(f"{direction} binding type '{kind}' is not supported by devhost")


def _queue_name(meta: dict[str, Any], environ: Mapping[str, str]) -> str:
    # The host lower-cases queue names before validating them, as Azure Storage requires.
    name = resolve_expression(str(meta.get("queueName") or ""), environ).lower()
    if not _QUEUE_NAME.fullmatch(name):
        raise UnsupportedFunction(f"'{name}' is not a valid queue name")
    return name


def _annotation(user_function: Callable[..., Any], param: str) -> type:
    try:
        hint = typing.get_type_hints(user_function).get(param)
    except Exception:  # unresolvable forward references: fall back to the default shape
        hint = None
    return hint if hint in (str, bytes) else func.QueueMessage


def _text(value: Any) -> str:
    return str(value.value if isinstance(value, Enum) else value)
