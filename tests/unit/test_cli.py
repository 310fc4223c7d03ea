"""The `tenantry` entry point (`tenantry_cli`): each command loads only what it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.wait import scaled

_PROBE = """
import json, sys
from tenantry_cli import main as cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""
_SERVICE_PACKAGES = {"controlplane", "ingestion", "asyncpg", "redis", "fastapi"}


def _loaded(*argv: str) -> tuple[set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=scaled(120),
    )
    *help_text, last = done.stdout.strip().splitlines()
    return set(json.loads(last)), "\n".join(help_text)


def test_the_operator_does_not_load_the_services() -> None:
    """The operator's memory is a target (issue 3): the control plane's and ingestion's
    libraries have no business in it."""
    loaded, text = _loaded("operator", "--help")
    assert "--liveness" in text
    assert not loaded & _SERVICE_PACKAGES, loaded & _SERVICE_PACKAGES


@pytest.mark.parametrize(
    ("command", "option", "package"),
    [("controlplane", "serve", "controlplane"), ("ingest", "--writer-only", "ingestion")],
)
def test_service_commands_still_get_their_options(command: str, option: str, package: str) -> None:
    loaded, text = _loaded(command, "--help")
    assert option in text
    assert package in loaded


def test_the_runtime_command_never_loads_the_dev_harness() -> None:
    """The local cluster and `make dev` are `python -m tenantry_dev`, which the image lacks."""
    loaded, text = _loaded("--help")
    assert "{operator,backup,restore,crds,controlplane,ingest,redis-exporter}" in text
    assert "tenantry_dev" not in loaded
    commands = ("operator", "backup", "restore", "controlplane", "ingest", "redis-exporter")
    for argv in ((command, "--help") for command in commands):
        loaded, _ = _loaded(*argv)
        assert "tenantry_dev" not in loaded, argv


def test_the_operator_loads_sqlglot_only_when_it_judges_a_panel() -> None:
    """sqlglot (the panel SQL safety check) costs about 37 MiB: the operator, with its
    handlers and dashboard step imported, has not loaded it before a panel is judged."""
    probe = (
        "import json, sys\n"
        "import tenantry_operator.main, tenantry_operator.handlers\n"
        "import tenantry_operator.dataplane.dashboards\n"
        "print(json.dumps('sqlglot' in sys.modules))\n"
        "from tenantry.dashboards import sql_safety\n"
        "print(json.dumps('sqlglot' in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=scaled(120),
    )
    assert done.stdout.split() == ["false", "true"]


def test_the_operator_stops_at_a_bad_setting_naming_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tenantry_cli", "operator"],
        capture_output=True,
        text=True,
        check=False,
        timeout=scaled(120),
        env={**os.environ, "TENANTRY_RESYNC_SECONDS": "0"},
    )
    assert done.returncode == 2, done.stderr
    assert "TENANTRY_RESYNC_SECONDS: Input should be greater than 0 (got '0')" in done.stderr


_JOB_END = """
import logging, sys
from tenantry_cli.main import end_job_process
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
print("line " * 20, end="")  # in the buffer of a pipe (block-buffered): not written yet
logging.getLogger("job").info("logged last")
end_job_process(3)
print("never")
"""


def _ended(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=scaled(60), check=False, env=env
    )


def test_a_job_process_ends_with_its_code_and_all_its_output() -> None:
    """A job's process ends without the interpreter's teardown (`end_job_process`); what
    it printed or logged into a pipe still arrives whole, and the code is its exit code."""
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = _ended([sys.executable, "-c", _JOB_END], buffered)
    assert done.returncode == 3
    assert done.stdout == "line " * 20
    assert done.stderr == "logged last\n"


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_a_job_command_without_its_environment_says_what_it_lacks_and_exits_2(
    command: str,
) -> None:
    """The job commands as a Job runs them (the console script, which ends the process
    itself): the configuration error reaches stderr and the exit code is 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    done = _ended([os.path.join(os.path.dirname(sys.executable), "tenantry"), command], env)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{command}: configuration: ")
    assert "TENANTRY_TENANT" in done.stderr
