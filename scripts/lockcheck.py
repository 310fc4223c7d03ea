"""Fail when pyproject.toml and the dependency locks disagree (run by `make test`).

The locks (`requirements/*.lock`, written by `make lock` with uv) pin every package,
direct and transitive, with its hashes. They go stale silently: someone adds a
dependency to pyproject.toml, or narrows a version range, and forgets `make lock`.
Then `make venv` installs a lock that no longer satisfies the project, and a fresh
machine tests something else than what the pyproject says. This check catches it:

1. every requirement of pyproject.toml (runtime, the `dev` extra, the build system)
   is pinned in the lock at a version its specifier allows, for the interpreters we
   install for: this one and the image's (Debian bookworm's Python 3.11.2);
2. the lock holds exactly the dependency closure of those requirements, walked
   through the installed packages' own metadata (nothing missing, nothing left over);
3. the venv holds exactly the lock's versions (`make venv` ran after the last lock
   change), and runtime.lock pins the same versions as dev.lock.

Offline: it reads pyproject.toml, the locks and the venv's metadata, nothing else.
Run with the venv's interpreter: `.venv/bin/python scripts/lockcheck.py`.
"""

from __future__ import annotations

import importlib.metadata as md
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PROJECT = "tenantry"
# The interpreter of the image (Debian bookworm's python3); markers such as
# `python_full_version < '3.11.3'` pick different packages there than here.
IMAGE_PYTHON = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux"}


def _here() -> dict[str, str]:
    """This interpreter's marker environment, as plain strings."""
    return {key: str(value) for key, value in default_environment().items()}


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: Version
    marker: Marker | None

    def applies(self, env: dict[str, str]) -> bool:
        return self.marker is None or self.marker.evaluate(env)


def read_lock(path: Path) -> list[Pin]:
    """The `name==version ; marker` lines of a uv/pip-compile lock (hashes skipped)."""
    pins: list[Pin] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "--")):
            continue
        requirement = Requirement(line.rstrip("\\").strip())
        (spec,) = requirement.specifier  # a lock line is one `==` pin
        assert spec.operator == "==", f"{path.name}: not a pin: {line}"
        pins.append(
            Pin(canonicalize_name(requirement.name), Version(spec.version), requirement.marker)
        )
    return pins


def requirements(pyproject: Path, *, extras: tuple[str, ...]) -> list[tuple[Requirement, str]]:
    """pyproject.toml's requirements for `extras`, each with where it was declared."""
    project = tomllib.loads(pyproject.read_text())
    found = [(Requirement(r), "[project].dependencies") for r in project["project"]["dependencies"]]
    for extra in extras:
        for r in project["project"]["optional-dependencies"][extra]:
            found.append((Requirement(r), f"[project.optional-dependencies].{extra}"))
    for r in project["build-system"]["requires"]:
        found.append((Requirement(r), "[build-system].requires"))
    return found


def environments() -> list[dict[str, str]]:
    here = _here()
    return [here, {**here, **IMAGE_PYTHON}]


def check_specifiers(
    lock: str, pins: list[Pin], wanted: list[tuple[Requirement, str]]
) -> list[str]:
    """Each requirement pinned at an allowed version, in every environment we install for."""
    problems: list[str] = []
    for env in environments():
        where = f"Python {env['python_full_version']}"
        for req, declared in wanted:
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            name = canonicalize_name(req.name)
            chosen = [p for p in pins if p.name == name and p.applies(env)]
            if not chosen:
                problems.append(f"{lock}: {req} ({declared}) is not pinned for {where}")
            elif not all(req.specifier.contains(p.version, prereleases=True) for p in chosen):
                versions = ", ".join(str(p.version) for p in chosen)
                problems.append(f"{lock}: {req} ({declared}) but the lock pins {versions}")
    return problems


def closure(wanted: list[tuple[Requirement, str]]) -> tuple[dict[NormalizedName, str], list[str]]:
    """Every distribution the requirements pull in here, by the installed metadata."""
    env = _here()
    needed: dict[NormalizedName, str] = {}
    problems: list[str] = []
    queue: list[tuple[Requirement, str]] = list(wanted)
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    while queue:
        req, via = queue.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        needed.setdefault(name, via)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            problems.append(f"{name} (needed by {via}) is not installed: run `make venv`")
            continue
        for line in dist.requires or []:
            dep = Requirement(line)
            # `extra == "x"` holds only when the requirement asked for x.
            if dep.marker is None or any(
                dep.marker.evaluate({**env, "extra": e}) for e in ("", *sorted(req.extras))
            ):
                dep.marker = None
                queue.append((dep, name))
    return needed, problems


def check_closure(lock: str, pins: list[Pin], wanted: list[tuple[Requirement, str]]) -> list[str]:
    env = _here()
    needed, problems = closure(wanted)
    locked = {p.name for p in pins if p.applies(env)}
    for name in sorted(set(needed) - locked):
        problems.append(f"{lock}: {name} is needed (by {needed[name]}) but not in the lock")
    for name in sorted(locked - set(needed)):
        problems.append(f"{lock}: {name} is in the lock but nothing in pyproject.toml needs it")
    return problems


def installed_here() -> dict[NormalizedName, Version]:
    return {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in md.distributions()}


def check_installed(
    lock: str,
    pins: list[Pin],
    have: dict[NormalizedName, Version],
    *,
    env: dict[str, str],
    besides: frozenset[str] = frozenset({PROJECT}),
) -> list[str]:
    """`have` (what an environment holds) is exactly the lock's versions, plus `besides`."""
    want = {p.name: p.version for p in pins if p.applies(env)}
    problems = [
        f"{lock}: {name}=={version} locked, {have.get(name, 'nothing')} installed"
        for name, version in sorted(want.items())
        if have.get(name) != version
    ]
    extra = sorted(set(have) - set(want) - {canonicalize_name(b) for b in besides})
    problems += [f"{name} is installed but not in {lock}" for name in extra]
    return problems


def image_disagreements(repo: Path, listing: str) -> list[str]:
    """The image's packages (`name==version` lines, from its own interpreter) against
    runtime.lock, for the image's Python; pip is the venv's own, not ours."""
    have: dict[NormalizedName, Version] = {}
    for line in listing.split():
        name, _, version = line.partition("==")
        have[canonicalize_name(name)] = Version(version)
    pins = read_lock(repo / "requirements/runtime.lock")
    env = {**_here(), **IMAGE_PYTHON}
    return check_installed("runtime.lock", pins, have, env=env, besides=frozenset({PROJECT, "pip"}))


def disagreements(repo: Path, *, venv: bool = True) -> list[str]:
    """Everything on which `repo`'s pyproject.toml, its locks and (with `venv`) this
    interpreter's installed packages disagree; empty when they agree."""
    dev_pins = read_lock(repo / "requirements/dev.lock")
    runtime_pins = read_lock(repo / "requirements/runtime.lock")
    dev_wanted = requirements(repo / "pyproject.toml", extras=("dev",))
    runtime_wanted = requirements(repo / "pyproject.toml", extras=())
    problems = [
        *check_specifiers("dev.lock", dev_pins, dev_wanted),
        *check_specifiers("runtime.lock", runtime_pins, runtime_wanted),
        *check_closure("dev.lock", dev_pins, dev_wanted),
        *check_closure("runtime.lock", runtime_pins, runtime_wanted),
    ]
    if venv:
        installed = check_installed("dev.lock", dev_pins, installed_here(), env=_here())
        problems += [f"{p} (run `make venv`)" for p in installed]
    dev_versions = {(p.name, str(p.marker)): p.version for p in dev_pins}
    for pin in runtime_pins:
        same = dev_versions.get((pin.name, str(pin.marker)))
        if same != pin.version:
            problems.append(f"runtime.lock pins {pin.name}=={pin.version}, dev.lock {same}")
    return problems


def main(argv: list[str]) -> int:
    """`lockcheck.py`: the repository; `lockcheck.py --image FILE`: an image's packages."""
    if argv[:1] == ["--image"]:
        problems = image_disagreements(REPO, Path(argv[1]).read_text())
        what = "the image and requirements/runtime.lock disagree"
    else:
        problems = disagreements(REPO)
        what = "pyproject.toml and the locks disagree; run `make lock` (see README)"
    if problems:
        print(f"{what}:")
        print("\n".join(f"  - {p}" for p in problems))
        return 1
    print(
        "the image holds runtime.lock" if argv else "locks agree with pyproject.toml and the venv"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
