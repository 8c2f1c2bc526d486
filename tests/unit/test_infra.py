"""The deployment sets exactly the settings the app reads (SPEC 14).

What the app reads is found in its code, not in a list kept by hand: every
environment variable named in shared/, functions/ and function_app.py (read
with os.environ / os.getenv, or through a helper of the same module that
does), every %NAME% binding expression and every binding connection in
functions/. What the deployment sets is the ``appSettings`` object of
infra/modules/function/function-app.bicep, read here with a small Bicep reader
of our own (tools/infra/check_bicep.py checks it against pycep, the parser
checkov uses), so this test runs in the app's venv with the standard library.

Also checked: the secrets are Key Vault references, the storage connections
identity-based, the settings Flex Consumption rejects absent, the local-host
settings absent, the Bicep defaults equal to the app's defaults, and Easy
Auth's excluded paths (AUTH_MODE=principal) exactly the app's public routes.

No pytest import at module level: tools/infra/check_bicep.py loads this file
in the infra tool venv to compare readers.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FUNCTION_APP_BICEP = REPO / "infra" / "modules" / "function" / "function-app.bicep"
POSTGRES_BICEP = REPO / "infra" / "modules" / "database" / "postgres.bicep"
MAIN_BICEP = REPO / "infra" / "main.bicep"

# Identity-based connections: the app reads <connection> or, in Azure,
# <connection>__<one of these> (the Functions host's convention).
CONNECTION_SUFFIXES = frozenset(
    {
        "accountName",
        "credential",
        "clientId",
        "blobServiceUri",
        "queueServiceUri",
        "tableServiceUri",
    }
)
# Set for the platform (the host, the Python worker, Application Insights),
# not read by the app's own code. Each must be set.
PLATFORM_SETTINGS = frozenset(
    {
        "AzureWebJobsStorage__accountName",  # the host's storage (queues, timers' leases, keys)
        "AzureWebJobsStorage__credential",  # managedidentity: Flex with a user-assigned identity
        "AzureWebJobsStorage__clientId",  # which identity
        "APPLICATIONINSIGHTS_CONNECTION_STRING",  # the host's telemetry
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",  # Entra ID auth for that telemetry
        "PYTHON_THREADPOOL_THREAD_COUNT",  # the Python worker (docs/decisions.md)
    }
)
# Never in Azure: Flex Consumption rejects the first group (functionAppConfig
# replaces them); a connection string would need shared keys, which the
# storage account disables; the last group belongs to the local host only
# (LOCAL_TRUST_CLIENT_PRINCIPAL would let any caller claim to be anyone).
FORBIDDEN_SETTINGS = frozenset(
    {
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_WORKER_RUNTIME_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
        "AzureWebJobsStorage",
        "ARCHIVE_STORAGE_CONNECTION",
    }
)
FORBIDDEN_PREFIXES = ("LOCAL_",)
# Set by the platform itself on every instance (never an app setting): the app
# may read them without the deployment setting them.
PROVIDED_BY_PLATFORM_PREFIXES = ("WEBSITE_", "FUNCTIONS_", "AZURE_FUNCTIONS_", "IDENTITY_", "MSI_")
# The trust store every HTTP client honours (requests reads them itself; the app's own
# urllib3 queue sender reads them alike): the machine's, never an app setting.
TRUST_STORE_SETTINGS = frozenset({"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"})
# Read from Key Vault, never a literal in the template.
SECRET_SETTINGS = frozenset({"POSTGRES_DSN", "REDIS_URL"})
# Easy Auth's globalValidation.excludedPaths in AUTH_MODE=principal.
PUBLIC_PATHS_VAR = "publicPaths"


# --- a small Bicep reader ------------------------------------------------------------


def _string_end(text: str, start: int) -> int:
    """Index of the quote closing the single-quoted string opened at ``start``."""
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "'":
            return i
        if text.startswith("${", i):
            depth, i = 1, i + 2
            while i < len(text) and depth:
                if text[i] == "'":
                    i = _string_end(text, i) + 1
                    continue
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            continue
        i += 1
    raise ValueError(f"unterminated string at offset {start}")


def _mask(text: str) -> str:
    """``text`` with comments and string contents blanked (same offsets), so
    brackets and colons left are the template's own."""
    out = list(text)

    def blank(begin: int, end: int) -> None:
        for k in range(begin, end):
            if out[k] != "\n":
                out[k] = " "

    i = 0
    while i < len(text):
        if text.startswith("'''", i):
            end = text.find("'''", i + 3)
            end = len(text) if end < 0 else end + 3
            blank(i + 1, end - 1)
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            blank(i, end)
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = len(text) if end < 0 else end + 2
            blank(i, end)
            i = end
        elif text[i] == "'":
            end = _string_end(text, i)
            blank(i + 1, end)
            i = end + 1
        else:
            i += 1
    return "".join(out)


_OPEN, _CLOSE = "{[(", "}])"
_KEY = re.compile(r"\s*(?P<key>[A-Za-z_]\w*|'[^'\n]*')\s*:")


def object_entries(text: str, brace: int) -> dict[str, str]:
    """Entries (key -> raw value text) of the Bicep object whose ``{`` is at
    ``text[brace]``: one entry per line at the object's own depth."""
    masked = _mask(text)
    if masked[brace] != "{":
        raise ValueError(f"no object at offset {brace}")
    entries: dict[str, str] = {}
    depth, key, value_start = 0, None, 0
    i = brace
    while i < len(masked):
        char = masked[i]
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0:
                if key is not None:
                    entries[key] = text[value_start:i].strip()
                return entries
        elif char == "\n" and depth == 1:
            if key is not None:
                entries[key] = text[value_start:i].strip()
                key = None
            match = _KEY.match(masked, i + 1)
            if match and masked[match.start("key")] != " ":
                key = text[match.start("key") : match.end("key")].strip("'")
                value_start = match.end()
                i = match.end()
                continue
        i += 1
    raise ValueError(f"object at offset {brace} is not closed")


def declaration(text: str, kind: str, name: str) -> int:
    """Offset of the ``{`` or ``[`` that opens ``var``/``module`` ``name``'s value."""
    masked = _mask(text)
    match = re.search(
        rf"^{kind}\s+{re.escape(name)}\b[^=\n]*=\s*(?:if\s*\([^\n]*\)\s*)?", masked, re.M
    )
    if match is None:
        raise AssertionError(f"no {kind} {name}")
    return match.end()


def bicep_app_settings() -> dict[str, str]:
    """The Function App's app settings in the Bicep: name -> raw Bicep value."""
    text = FUNCTION_APP_BICEP.read_text()
    return object_entries(text, declaration(text, "var", "appSettings"))


def bicep_string_list(path: Path, name: str) -> list[str]:
    text = path.read_text()
    start = declaration(text, "var", name)
    end = _mask(text).index("]", start)
    return re.findall(r"'([^']*)'", text[start:end])


def main_param_defaults() -> dict[str, str]:
    """main.bicep's parameter defaults (raw Bicep text)."""
    masked = _mask(MAIN_BICEP.read_text())
    raw = MAIN_BICEP.read_text()
    return {
        m.group(1): raw[m.start(2) : m.end(2)].strip()
        for m in re.finditer(r"^param\s+(\w+)\s+\w+\s*=\s*(.+)$", masked, re.M)
    }


# --- what the app reads -------------------------------------------------------------


def _app_sources() -> list[Path]:
    return [
        REPO / "function_app.py",
        *sorted((REPO / "shared").rglob("*.py")),
        *sorted((REPO / "functions").glob("*.py")),
    ]


def _reads_environment(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Attribute)
        and n.attr in ("environ", "getenv")
        and isinstance(n.value, ast.Name)
        and n.value.id == "os"
        for n in ast.walk(node)
    )


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def environment_reads(
    tree: ast.Module, scope: ast.AST | None = None
) -> dict[str, ast.Call | ast.Subscript]:
    """Names this module (or the part ``scope`` of it) reads from the
    environment: os.environ.get("X"), os.getenv("X"), os.environ["X"], an alias
    of os.environ.get, or a helper of the module that reads the environment,
    called with the name first."""
    helpers = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and _reads_environment(node)
    }
    aliases = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _reads_environment(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found: dict[str, ast.Call | ast.Subscript] = {}
    for node in ast.walk(scope or tree):
        if isinstance(node, ast.Call):
            func = node.func
            direct = isinstance(func, ast.Attribute) and _reads_environment(func)
            named = isinstance(func, ast.Name) and func.id in helpers | aliases
            name = _first_string(node)
            if (direct or named) and name:
                found[name] = node
        elif isinstance(node, ast.Subscript) and _reads_environment(node.value):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                found[key.value] = node
    return found


def app_settings_read() -> set[str]:
    names: set[str] = set()
    for path in _app_sources():
        names |= set(environment_reads(ast.parse(path.read_text(), str(path))))
    return names


def binding_settings() -> tuple[set[str], set[str]]:
    """(%NAME% binding expressions, binding connection names) of functions/*.py."""
    expressions: set[str] = set()
    connections: set[str] = set()
    for path in sorted((REPO / "functions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                expressions |= set(re.findall(r"%(\w+)%", node.value))
            elif (
                isinstance(node, ast.keyword)
                and node.arg == "connection"
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                connections.add(node.value.value)
    return expressions, connections


def connections_read() -> set[str]:
    """Settings the app treats as storage connections (identity-based in Azure):
    the bindings' connections, AzureWebJobsStorage, *_CONNECTION, and the base
    of any <name>__accountName-style name the app reads itself."""
    _, connections = binding_settings()
    for name in app_settings_read():
        base, _, suffix = name.partition("__")
        if suffix in CONNECTION_SUFFIXES:
            connections.add(base)
        elif name == "AzureWebJobsStorage" or name.endswith("_CONNECTION"):
            connections.add(name)
    return connections


def is_set(name: str, deployed: set[str]) -> bool:
    """Deployed as such, or, for a storage connection (or one of its
    identity-based names), as any of its identity-based names."""
    if name in deployed:
        return True
    base, _, suffix = name.partition("__")
    if suffix and suffix not in CONNECTION_SUFFIXES:
        return False
    return base in connections_read() and any(
        key.startswith(f"{base}__") and key.split("__", 1)[1] in CONNECTION_SUFFIXES
        for key in deployed
    )


# --- the tests ------------------------------------------------------------------------


def test_reader_finds_the_settings_block() -> None:
    settings = bicep_app_settings()
    assert len(settings) >= 20, settings
    assert settings["AUTH_MODE"] == "authMode"


def test_every_setting_the_app_reads_is_deployed() -> None:
    deployed = set(bicep_app_settings())
    expressions, connections = binding_settings()
    read = app_settings_read()
    assert {"POSTGRES_DSN", "REDIS_URL", "AUTH_MODE", "AUTH_USER_ID_CLAIM"} <= read, read
    assert {"PERSIST_QUEUE", "ARCHIVE_QUEUE", "REALTIME_QUEUE"} <= expressions, expressions
    missing = sorted(
        name
        for name in read | expressions | connections
        if not is_set(name, deployed)
        and not name.startswith(PROVIDED_BY_PLATFORM_PREFIXES)
        and name not in TRUST_STORE_SETTINGS
    )
    assert not missing, f"read by the app, not set in {FUNCTION_APP_BICEP.name}: {missing}"


def test_the_deployment_sets_nothing_the_app_does_not_read() -> None:
    read = app_settings_read() | binding_settings()[0]
    connections = connections_read()
    unknown = []
    for key in bicep_app_settings():
        base, _, suffix = key.partition("__")
        if key in read or key in PLATFORM_SETTINGS:
            continue
        if suffix in CONNECTION_SUFFIXES and base in connections:
            continue
        unknown.append(key)
    assert not unknown, (
        f"set in {FUNCTION_APP_BICEP.name} but read by no code (remove them, or list a "
        f"platform setting in PLATFORM_SETTINGS): {sorted(unknown)}"
    )


def test_platform_settings_are_set_and_forbidden_ones_are_not() -> None:
    deployed = set(bicep_app_settings())
    assert deployed >= PLATFORM_SETTINGS, sorted(PLATFORM_SETTINGS - deployed)
    forbidden = sorted(
        key for key in deployed if key in FORBIDDEN_SETTINGS or key.startswith(FORBIDDEN_PREFIXES)
    )
    assert not forbidden, f"must not be set in Azure: {forbidden}"


def test_secrets_come_from_key_vault_and_storage_from_the_identity() -> None:
    settings = bicep_app_settings()
    for name in sorted(SECRET_SETTINGS):
        assert settings[name].startswith("'@Microsoft.KeyVault(SecretUri="), (name, settings[name])
    for key, value in settings.items():
        if key.endswith("__credential"):
            assert value == "'managedidentity'", (key, value)
    for connection in connections_read():
        for suffix in ("accountName", "credential", "clientId"):
            assert f"{connection}__{suffix}" in settings, f"{connection}__{suffix}"


def _app_defaults() -> dict[str, str]:
    """Each setting's default as the app sees it: Settings.from_env() with
    none of them set, rendered as an app setting string."""
    from shared.settings import Settings  # the app's own code

    tree = ast.parse((REPO / "shared" / "settings.py").read_text())
    fields: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "cls":
            for keyword in node.keywords:
                for name in environment_reads(tree, keyword.value):
                    fields[name] = str(keyword.arg)
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name in fields}
    try:
        settings = Settings.from_env()
    finally:
        os.environ.update(saved)
    defaults: dict[str, str] = {}
    for name, field_name in fields.items():
        value: Any = getattr(settings, field_name, None)
        if isinstance(value, tuple):
            value = ",".join(str(part) for part in value)
        value = getattr(value, "value", value)  # enums (AUTH_MODE)
        if isinstance(value, str | int):
            defaults[name] = str(value)
    return defaults


def test_bicep_defaults_are_the_app_defaults() -> None:
    """A setting deployed from a main.bicep parameter defaults to what the app
    would use without it, so the docs' defaults hold in Azure too."""
    settings = bicep_app_settings()
    main_text = MAIN_BICEP.read_text()
    module = object_entries(main_text, declaration(main_text, "module", "functionApp"))
    module_params = module["params"]
    passed = object_entries(module_params, 0)
    defaults = main_param_defaults()
    compared = 0
    for name, default in _app_defaults().items():
        value = settings.get(name, "")
        match = re.fullmatch(r"(?:string\()?(\w+)\)?", value)
        if not match or match.group(1) not in passed:
            continue
        main_param = passed[match.group(1)]
        if main_param not in defaults:
            continue
        bicep_default = defaults[main_param].strip("'")
        assert bicep_default == default, (
            f"{name}: main.bicep {main_param} = {bicep_default!r}, app {default!r}"
        )
        compared += 1
    assert compared >= 10, f"only {compared} defaults compared: the reader lost track"


def test_easy_auth_excludes_exactly_the_public_routes() -> None:
    import function_app  # noqa: F401  (declares every route)
    from shared.services.openapi import API

    prefix = json.loads((REPO / "host.json").read_text())["extensions"]["http"]["routePrefix"]
    public = {
        re.sub(r"\{\*[^}]*\}", "*", f"/{prefix}/{operation.route}")
        for operation in API.operations
        if operation.rule.public
    }
    assert "/api/v1/health" in public, public
    assert all("{" not in path for path in public), f"a public route with a parameter: {public}"
    excluded = set(bicep_string_list(FUNCTION_APP_BICEP, PUBLIC_PATHS_VAR))
    assert excluded == public, f"excludedPaths {sorted(excluded)} != public routes {sorted(public)}"


def test_the_server_allows_every_extension_the_migrations_create() -> None:
    created = {
        name.lower()
        for path in sorted((REPO / "sql").glob("*.sql"))
        for name in re.findall(
            r"create\s+extension\s+(?:if\s+not\s+exists\s+)?\"?(\w+)",
            re.sub(r"--[^\n]*", "", path.read_text()),
            re.I,
        )
    }
    allowed = {name.lower() for name in bicep_string_list(POSTGRES_BICEP, "allowedExtensions")}
    assert created <= allowed, (
        f"migrations create {sorted(created - allowed)}: add them to allowedExtensions in "
        f"{POSTGRES_BICEP.relative_to(REPO)} (the server's azure.extensions)"
    )
