"""The documentation stays true to the repository.

- every relative link and every backticked repository path in README.md and
  docs/*.md names something that exists (and a link's #anchor a heading or an
  explicit anchor of the document it points to);
- nothing there points outside the repository: the contract lives in docs/api.md;
- docs/api.md's generated sections are what scripts/docs_api.py produces now,
  and its settings table names every setting shared/settings.py reads.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from scripts import docs_api

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
API_DOC = ROOT / "docs" / "api.md"

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); the target has no spaces.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
HTML_TARGET = re.compile(r"""<(?:img|a)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Not a concrete path: globs, {placeholders}, <placeholders>, $VARS, elisions,
# queries, URLs, and sql/NNN_name.sql-style patterns.
PLACEHOLDER = re.compile(r"[*{}<>$?=@…\\]|\.\.\.|://|(?<![A-Za-z])NNN|YYYY")
EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,9}$")
# Pointers to documents that a clone of this repository does not have.
OUTSIDE = (
    (re.compile(r"\.\./shared\b"), "../shared"),
    (re.compile(r"\bSPEC\.md\b"), "SPEC.md"),
    (re.compile(r"\bSPEC(?:\s+sections?)?\s+\d"), "a SPEC section number"),
    (re.compile(r"\bshared/seed\b"), "the seed document"),
)


# --- reading the docs ------------------------------------------------------------------------


def prose(text: str) -> str:
    """The text outside fenced code blocks (a fence holds commands and output, not paths)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            kept.append("")
            continue
        kept.append("" if fenced else line)
    return "\n".join(kept)


def repo_path_token(token: str) -> str | None:
    """The repository path a backticked token names, or None when it is not one.

    A path contains a ``/`` and ends with ``/`` or a file extension; API paths
    (``/api/v1/...``), URLs, globs, placeholders and anything with spaces are not.
    ``file.py::test_name`` names ``file.py``.
    """
    token = token.strip()
    if not token or any(ch.isspace() for ch in token) or "/" not in token:
        return None
    token = token.split("::", 1)[0]
    if token.startswith(("/", "~", "-", "#")) or SCHEME.match(token) or PLACEHOLDER.search(token):
        return None
    if not (token.endswith("/") or EXTENSION.search(token)):
        return None
    return token.removeprefix("./")


def backticked_paths(text: str) -> list[str]:
    found = []
    for match in INLINE_CODE.finditer(prose(text)):
        path = repo_path_token(match.group(2))
        if path is not None:
            found.append(path)
    return found


def link_targets(text: str) -> list[str]:
    body = prose(text)
    # Inline code is not a link, even when it shows one.
    body = INLINE_CODE.sub(lambda m: " " * len(m.group(0)), body)
    return [
        *LINK.findall(body),
        *REFERENCE.findall(body),
        *HTML_TARGET.findall(body),
    ]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: plain text, lower case, punctuation dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every anchor a document offers: its headings (numbered when repeated) and ids."""
    text = path.read_text(encoding="utf-8")
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in prose(text).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            base = slug(heading.group(1))
            seen = counts.get(base, 0)
            counts[base] = seen + 1
            found.add(base if seen == 0 else f"{base}-{seen}")
    found |= set(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))
    return frozenset(found)


@cache
def ignored_by_git(path: str) -> bool:
    """Paths the repository ignores (.venv/, .azure/, ...) are made by running things,
    not shipped, so a doc may name them."""
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", path],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- the path rules themselves ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "path"),
    [
        ("shared/services/access.py", "shared/services/access.py"),
        ("sql/015_access_refusals.sql", "sql/015_access_refusals.sql"),
        ("docs/img/dashboard-lessons.png", "docs/img/dashboard-lessons.png"),
        ("infra/", "infra/"),
        ("./scripts/docs_api.py", "scripts/docs_api.py"),
        ("tests/unit/test_docs.py::test_x", "tests/unit/test_docs.py"),
        ("/api/v1/events", None),
        ("GET /api/v1/health", None),
        ("https://example.org/a/b.py", None),
        ("dashboard/*.html", None),
        ("docs/img/dashboard-<page>.png", None),
        ("students/{id}", None),
        ("sql/NNN_name.sql", None),
        ("application/json", None),
        ("sql/010", None),
        ("forum/trending?hours=24", None),
        ("shared/limits.py: MAX_SCORE", None),
    ],
)
def test_what_counts_as_a_repository_path(token: str, path: str | None) -> None:
    assert repo_path_token(token) == path


def test_links_and_paths_are_found_outside_code_blocks_only() -> None:
    text = (
        "See [the API](api.md#limits), ![img](img/x.png) and `shared/limits.py`.\n"
        "```sh\ncat `not/a/path.py` [x](nowhere.md)\n```\n"
        "Inline `[y](not-a-link.md)` is code.\n"
    )
    assert link_targets(text) == ["api.md#limits", "img/x.png"]
    assert backticked_paths(text) == ["shared/limits.py"]


def test_slugs_follow_github() -> None:
    assert slug("Guarantees: at-least-once, idempotent, order-independent") == (
        "guarantees-at-least-once-idempotent-order-independent"
    )
    assert slug("`/api/v1/reports/students/{student_id}`") == "apiv1reportsstudentsstudent_id"
    assert slug("Outages (SPEC 13)") == "outages-spec-13"


# --- the docs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in link_targets(doc.read_text(encoding="utf-8")):
        if SCHEME.match(target):
            continue  # a URL (https:, mailto:): not this repository's to check
        path_part, _, fragment = target.partition("#")
        destination = (doc.parent / path_part).resolve() if path_part else doc
        if ROOT not in (destination, *destination.parents):
            broken.append(f"{target} (outside the repository)")
            continue
        if not destination.exists():
            broken.append(f"{target} (no such file)")
            continue
        if fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{target} (no such anchor)")
    assert not broken, f"{doc_id(doc)}: broken links: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_backticked_paths_exist(doc: Path) -> None:
    missing = []
    for path in backticked_paths(doc.read_text(encoding="utf-8")):
        if (ROOT / path).exists() or (doc.parent / path).exists() or ignored_by_git(path):
            continue
        missing.append(path)
    assert not missing, f"{doc_id(doc)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_nothing_points_outside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    found = [
        f"line {text.count(chr(10), 0, match.start()) + 1}: {what} ({match.group(0)!r})"
        for pattern, what in OUTSIDE
        for match in pattern.finditer(text)
    ]
    assert not found, (
        f"{doc_id(doc)} points outside the repository; point to the doc in docs/ that "
        f"carries that part of the contract (docs/api.md) instead: {found}"
    )


# --- docs/architecture.md's folder tree ---------------------------------------------------------

# Folders whose every module the tree describes, and what counts as a module there.
DESCRIBED = {
    "functions": ("*.py",),
    "shared": ("*.py",),
    "shared/models": ("*.py",),
    "shared/repositories": ("*.py",),
    "shared/services": ("*.py",),
    "devhost": ("*.py",),
    "scripts": ("*.py", "*.sh"),
}
SKIP_DIRS = {".git", ".venv", ".tools", "node_modules", "__pycache__", ".azurite", ".azure"}


def architecture_tree() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    shape = text[text.index("## The shape") :]
    match = re.search(r"```\n(.*?)```", shape, re.DOTALL)
    assert match, "docs/architecture.md: no folder tree under '## The shape'"
    return match.group(1)


def tree_names(tree: str) -> set[str]:
    """The names the tree describes: its first column ("http.py, routes.py   what")."""
    names = set()
    for line in tree.splitlines():
        column = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        names.update(name.strip() for name in column.split(",") if name.strip())
    return names


def tracked_top_level_folders() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return {line.split("/", 1)[0] for line in listed if "/" in line}


def test_the_tree_names_every_top_level_folder() -> None:
    tree = architecture_tree()
    missing = [name for name in sorted(tracked_top_level_folders()) if f"{name}/" not in tree]
    assert not missing, f"docs/architecture.md's tree lacks the folders {missing}"


@pytest.mark.parametrize("folder", sorted(DESCRIBED))
def test_the_tree_describes_every_module(folder: str) -> None:
    names = tree_names(architecture_tree())
    modules = sorted(
        path.name
        for pattern in DESCRIBED[folder]
        for path in (ROOT / folder).glob(pattern)
        if path.name != "__init__.py"
    )
    missing = [m for m in modules if not any(fnmatch.fnmatch(m, n) for n in names)]
    assert not missing, f"docs/architecture.md's tree does not say what {folder}/{missing} do"


def test_every_file_the_tree_names_exists() -> None:
    on_disk: set[str] = set()
    for _, folders, filenames in os.walk(ROOT):
        folders[:] = [f for f in folders if f not in SKIP_DIRS]
        on_disk.update(filenames)
    files = [
        name.rsplit("/", 1)[-1]
        for name in tree_names(architecture_tree())
        if EXTENSION.search(name) and not name.endswith("/")
    ]
    missing = sorted(
        name for name in files if not any(fnmatch.fnmatch(disk, name) for disk in on_disk)
    )
    assert not missing, f"docs/architecture.md's tree names files that do not exist: {missing}"


# --- docs/api.md ----------------------------------------------------------------------------------


def test_api_doc_has_every_generated_section_once() -> None:
    names = docs_api.generated_names(API_DOC.read_text(encoding="utf-8"))
    assert sorted(names) == sorted(docs_api.SECTIONS)


def test_api_doc_is_what_the_code_generates() -> None:
    current = API_DOC.read_text(encoding="utf-8")
    fresh = docs_api.render(current)
    diff = "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            fresh.splitlines(keepends=True),
            "docs/api.md",
            "scripts/docs_api.py",
            n=1,
        )
    )
    assert fresh == current, (
        "docs/api.md is stale: run .venv/bin/python -m scripts.docs_api\n" + diff[:6000]
    )


def test_api_doc_documents_every_route_and_event_type() -> None:
    text = API_DOC.read_text(encoding="utf-8")
    for operation in docs_api.API.operations:
        assert f"`{operation.method.upper()} {operation.path}`" in text, operation.name
    for kind in docs_api.events.EVENT_TYPES:
        assert f"#### `{kind}`" in text, kind


def settings_read() -> set[str]:
    """The names shared/settings.py reads from the environment (string literals passed
    as the first argument of its readers: env(...), _int(...), os.environ.get(...), ...)."""
    tree = ast.parse((ROOT / "shared" / "settings.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        if re.fullmatch(r"AzureWebJobs\w+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", first.value):
            names.add(first.value)
    return names


def test_settings_table_names_every_setting_the_app_reads() -> None:
    text = API_DOC.read_text(encoding="utf-8")
    table = text[text.index("## Settings") : text.index("## Limits")]
    documented = set(re.findall(r"`([A-Za-z][A-Za-z0-9_]*)`", table))
    read = settings_read()
    assert {"POSTGRES_DSN", "AzureWebJobsStorage", "AUTH_MODE"} <= read  # the scan works
    assert read <= documented, f"settings missing from docs/api.md: {sorted(read - documented)}"
