"""The lock check (scripts/lockcheck.py, part of `make test`) passes on the repository
and names what is wrong when pyproject.toml and the locks disagree."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts import lockcheck

REPO = Path(__file__).resolve().parents[2]


def test_the_repository_its_locks_and_this_venv_agree() -> None:
    assert lockcheck.disagreements(REPO) == []


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """pyproject.toml and requirements/ of the repository, to be broken."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "requirements", tmp_path / "requirements")
    assert lockcheck.disagreements(tmp_path, venv=False) == []
    return tmp_path


def edit(path: Path, change: Callable[[str], str]) -> None:
    before = path.read_text()
    after = change(before)
    assert after != before, f"the edit of {path.name} changed nothing"
    path.write_text(after)


def test_a_dependency_added_to_pyproject_but_not_locked_is_named(copy: Path) -> None:
    edit(
        copy / "pyproject.toml", lambda s: s.replace('  "msgspec', '  "tabulate>=0.9",\n  "msgspec')
    )
    problems = lockcheck.disagreements(copy, venv=False)
    assert any("tabulate>=0.9 ([project].dependencies) is not pinned" in p for p in problems)


def test_a_range_that_excludes_the_pin_is_named(copy: Path) -> None:
    edit(copy / "pyproject.toml", lambda s: re.sub(r'"msgspec>=[^"]*"', '"msgspec>=99"', s))
    problems = lockcheck.disagreements(copy, venv=False)
    assert any(p.startswith("dev.lock: msgspec>=99") and "lock pins" in p for p in problems)
    assert any(p.startswith("runtime.lock: msgspec>=99") for p in problems)


def test_a_dev_dependency_missing_from_the_dev_lock_is_named(copy: Path) -> None:
    edit(copy / "requirements/dev.lock", lambda s: _drop(s, "pytest-timeout"))
    problems = lockcheck.disagreements(copy, venv=False)
    assert any("pytest-timeout" in p and "not pinned" in p for p in problems)
    assert any("pytest-timeout is needed" in p and "not in the lock" in p for p in problems)


def test_a_transitive_dependency_missing_from_the_lock_is_named(copy: Path) -> None:
    # h11 is nobody's direct requirement: only the metadata walk can miss it.
    edit(copy / "requirements/runtime.lock", lambda s: _drop(s, "h11"))
    problems = lockcheck.disagreements(copy, venv=False)
    assert any(p.startswith("runtime.lock: h11 is needed (by ") for p in problems)


def test_a_package_nothing_needs_is_named(copy: Path) -> None:
    edit(copy / "requirements/dev.lock", lambda s: s + "tabulate==0.9.0\n")
    problems = lockcheck.disagreements(copy, venv=False)
    assert "dev.lock: tabulate is in the lock but nothing in pyproject.toml needs it" in problems


def test_runtime_and_dev_locks_must_pin_the_same_versions(copy: Path) -> None:
    edit(
        copy / "requirements/runtime.lock",
        lambda s: re.sub(r"\nmsgspec==[^ ]+", "\nmsgspec==0.1", s),
    )
    problems = lockcheck.disagreements(copy, venv=False)
    assert any(p.startswith("runtime.lock pins msgspec==0.1, dev.lock ") for p in problems)


def _drop(lock: str, name: str) -> str:
    """`lock` without the entry of `name` (its pin line, hashes and annotations)."""
    out: list[str] = []
    skipping = False
    for line in lock.splitlines(keepends=True):
        if re.match(r"[A-Za-z0-9]", line):
            skipping = line.split("==")[0] == name
        if not skipping:
            out.append(line)
    return "".join(out)


def _image_listing() -> list[str]:
    """What an image built from runtime.lock holds, as its interpreter lists it."""
    env = {**lockcheck._here(), **lockcheck.IMAGE_PYTHON}
    pins = lockcheck.read_lock(REPO / "requirements/runtime.lock")
    return [f"{p.name}=={p.version}" for p in pins if p.applies(env)] + ["pip==23.0.1"]


def test_an_image_built_from_the_runtime_lock_passes() -> None:
    listing = _image_listing()
    # Debian's Python 3.11.2 needs async-timeout; this interpreter (3.11.7) does not.
    assert any(line.startswith("async-timeout==") for line in listing)
    assert lockcheck.image_disagreements(REPO, "\n".join(listing)) == []


def test_an_image_with_another_version_or_an_extra_package_fails() -> None:
    listing = [
        "msgspec==0.18.0" if line.startswith("msgspec==") else line for line in _image_listing()
    ]
    listing.append("pytest==8.0.0")
    problems = lockcheck.image_disagreements(REPO, "\n".join(listing))
    assert any(
        p.startswith("runtime.lock: msgspec==") and "0.18.0 installed" in p for p in problems
    )
    assert "pytest is installed but not in runtime.lock" in problems
