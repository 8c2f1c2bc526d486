"""The locked requirement files: every package pinned exactly with hashes, and
every pin of requirements/*.in carried into its compiled file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {
    "runtime.in": "requirements.txt",
    "dev.in": "requirements-dev.txt",
    "bench.in": "requirements-bench.txt",
}
PIN = re.compile(r"^([A-Za-z0-9_.\[\],-]+)==([^\s\\]+)")


def entries(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a compiled file."""
    found: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = re.sub(r"\[.*\]", "", match[1]).lower()
            found[current] = (match[2], 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
        elif line and not line.startswith((" ", "#")):
            pytest.fail(f"{path.name}: not an exact pin: {line!r}")
    return found


@pytest.mark.parametrize(("source", "locked"), sorted(LOCKS.items()))
def test_every_package_is_pinned_with_hashes_and_the_in_pins_are_kept(
    source: str, locked: str
) -> None:
    compiled = entries(ROOT / locked)
    assert compiled, locked
    assert all(hashes > 0 for _, hashes in compiled.values()), locked
    for line in (ROOT / "requirements" / source).read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            name = re.sub(r"\[.*\]", "", match[1]).lower()
            assert compiled.get(name, ("missing",))[0] == match[2], f"{name} in {locked}"
