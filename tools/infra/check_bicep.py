"""Offline checks of infra/ that a Bicep compiler would make, as far as a parser can.

Runs in the infra tool venv (.tools/infra-venv, scripts/infra_checks.sh), with
pycep-parser, the Bicep parser checkov uses (so a file it cannot parse would
also be skipped by checkov without a word):

1. every .bicep file under infra/ parses;
2. every module call passes only parameters the module declares, every
   parameter without a default, and reads only outputs the module declares;
3. no parameter or variable is declared and never used;
4. infra/main.parameters.json sets only parameters main.bicep declares;
5. the app settings block read by tests/unit/test_infra.py (a stdlib reader,
   so the test runs in the app's venv) has exactly the keys pycep finds;
6. the hook scripts azure.yaml names exist and are executable.

Usage: python tools/infra/check_bicep.py [REPO]   (exit 1 on any problem)
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pycep import BicepParser

REPO = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]).resolve()
INFRA = REPO / "infra"
FUNCTION_APP = INFRA / "modules" / "function" / "function-app.bicep"


def strip_comments(text: str) -> str:
    """The text without // and /* */ comments or @description(...) lines."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith("@description("):
            continue
        lines.append(re.sub(r"(^|\s)//.*$", "", line))
    return "\n".join(lines)


def module_config(module: dict[str, Any]) -> dict[str, Any]:
    """A module's object, under a deploy condition or not."""
    config = module["config"]
    if "condition" in config:
        config = config["config"]
    return config  # type: ignore[no-any-return]


def main() -> int:
    problems: list[str] = []
    parser = BicepParser()
    parsed: dict[Path, dict[str, Any]] = {}

    files = sorted(INFRA.rglob("*.bicep"))
    if not files:
        problems.append(f"no .bicep files under {INFRA}")
    for path in files:
        try:
            parsed[path] = parser.parse(file_path=path)
        except Exception as exc:  # pycep raises lark's errors and ValueError
            problems.append(f"{path.relative_to(REPO)}: does not parse: {exc}".splitlines()[0])
    print(f"check_bicep: {len(parsed)}/{len(files)} .bicep files parse (pycep)")

    for path, tree in parsed.items():
        rel = path.relative_to(REPO)
        text = strip_comments(path.read_text())
        modules = tree.get("modules", {})
        for symbol, module in modules.items():
            target = (path.parent / module["detail"]["path"]).resolve()
            if target not in parsed:
                problems.append(f"{rel}: module {symbol}: {target} missing or unparsed")
                continue
            declared = parsed[target].get("parameters", {})
            outputs = parsed[target].get("outputs", {})
            passed = set(module_config(module).get("params", {}))
            for name in sorted(passed - set(declared)):
                problems.append(f"{rel}: module {symbol} passes {name}, which it does not declare")
            for name, param in declared.items():
                if param.get("default") is None and name not in passed:
                    problems.append(f"{rel}: module {symbol} misses parameter {name} (no default)")
            for used in sorted(set(re.findall(rf"\b{symbol}\.outputs\.(\w+)", text))):
                if used not in outputs:
                    problems.append(
                        f"{rel}: {symbol}.outputs.{used} is not an output of the module"
                    )
        for kind in ("parameters", "variables"):
            for name in tree.get(kind, {}):
                if len(re.findall(rf"(?<![\w.']){re.escape(name)}\b", text)) < 2:
                    problems.append(f"{rel}: {kind[:-1]} {name} is declared but never used")

    main_bicep = parsed.get(INFRA / "main.bicep")
    parameters_file = INFRA / "main.parameters.json"
    if main_bicep is None:
        problems.append("infra/main.bicep missing or unparsed")
    else:
        values = json.loads(parameters_file.read_text())["parameters"]
        for name in sorted(set(values) - set(main_bicep.get("parameters", {}))):
            problems.append(
                f"infra/main.parameters.json sets {name}, which main.bicep does not declare"
            )

    # The test's own reader against the real parser.
    spec = importlib.util.spec_from_file_location("test_infra", REPO / "tests/unit/test_infra.py")
    if spec is None or spec.loader is None:
        problems.append("tests/unit/test_infra.py cannot be loaded")
    else:
        test_infra = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(test_infra)
        theirs = set(test_infra.bicep_app_settings())
        tree = parsed.get(FUNCTION_APP, {})
        ours = set(tree.get("variables", {}).get("appSettings", {}).get("value", {}))
        if not ours:
            problems.append(f"{FUNCTION_APP.relative_to(REPO)}: no var appSettings object")
        elif ours != theirs:
            problems.append(
                "tests/unit/test_infra.py reads other app settings than pycep: "
                f"only pycep {sorted(ours - theirs)}, only the test {sorted(theirs - ours)}"
            )
        else:
            print(f"check_bicep: the test's reader agrees with pycep on {len(ours)} app settings")

    azure_yaml = yaml.safe_load((REPO / "azure.yaml").read_text())
    for hook, spec_ in (azure_yaml.get("hooks") or {}).items():
        for platform in ("posix", "windows"):
            run = (spec_.get(platform) or {}).get("run", "")
            for script in re.findall(r"\./(\S+\.sh)\b", run):
                script_path = REPO / script
                if not script_path.is_file():
                    problems.append(f"azure.yaml hook {hook}: {script} does not exist")
                elif not os.access(script_path, os.X_OK):
                    problems.append(f"azure.yaml hook {hook}: {script} is not executable")

    for problem in problems:
        print(f"check_bicep: {problem}", file=sys.stderr)
    print(f"check_bicep: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
