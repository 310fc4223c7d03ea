"""tenantry_dev.realnode's pure checks: which state dirs a real node can use, and which
processes belong to a cluster (the part of liveness that needs no cluster)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tenantry_dev import realnode, waiting
from tenantry_dev.cluster import LocalCluster


def test_a_state_dir_too_long_for_containerds_sockets_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    # The longest socket is <state>/node/containerd/containerd.sock.ttrpc (38 bytes more).
    suffix = "/node/containerd/containerd.sock.ttrpc"
    fits = Path("/tmp") / ("s" * (realnode.SOCKET_PATH_MAX - len(suffix) - len("/tmp/")))
    realnode.check_state_dir(fits)
    too_long = Path(str(fits) + "x")
    with pytest.raises(ValueError, match=r"too long for a real node: .* over the 104"):
        realnode.check_state_dir(too_long)
    with pytest.raises(ValueError, match="choose a shorter --state-dir"):
        LocalCluster(too_long, node_kind="real")
    LocalCluster(too_long, node_kind="kwok")  # kwok nodes have no sockets of their own
    assert not too_long.exists()


def test_a_process_belongs_to_the_state_dir_it_runs_in(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.mkdir()
    other.mkdir()
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    proc = subprocess.Popen(sleeper, cwd=mine)
    try:
        assert realnode.runs_in(proc.pid, mine)
        assert not realnode.runs_in(proc.pid, other)
        assert not realnode.runs_in(os.getpid(), mine)
        assert proc.pid in realnode.holders(mine)
        assert proc.pid not in realnode.holders(other)
    finally:
        proc.kill()
        proc.wait()
    assert not realnode.runs_in(proc.pid, mine)
    assert proc.pid not in realnode.holders(mine)


def test_a_process_naming_the_state_dir_on_its_command_line_belongs_to_it(
    tmp_path: Path,
) -> None:
    """Like containerd's shims, whose working directory is elsewhere."""
    state = tmp_path / "state"
    state.mkdir()
    argv = [sys.executable, "-c", "import time; time.sleep(60)", f"{state}/node/x.sock"]
    proc = subprocess.Popen(argv, cwd=tmp_path)
    try:
        assert not realnode.runs_in(proc.pid, state)
        assert proc.pid in realnode.holders(state)
        # A sibling whose name only starts the same is not this state dir.
        assert proc.pid not in realnode.holders(tmp_path / "sta")
    finally:
        proc.kill()
        proc.wait()


def test_one_walk_of_proc_finds_the_daemons_and_the_processes_naming_the_state_dir(
    tmp_path: Path,
) -> None:
    """``processes_of`` on a made-up /proc: what ``daemons`` (working directory only) and
    ``holders`` (also the command line) read from one walk."""
    state, elsewhere, proc = tmp_path / "state", tmp_path / "elsewhere", tmp_path / "proc"
    for d in (state, elsewhere):
        d.mkdir()
    (tmp_path / "via-link").symlink_to(state)
    base = 4_194_304  # Linux's PID_MAX_LIMIT: above every real PID, so never this process's

    def entry(name: str, cwd: Path | None, *argv: str) -> None:
        folder = proc / name
        folder.mkdir(parents=True)
        if cwd is not None:
            (folder / "cwd").symlink_to(cwd)
        if argv:
            (folder / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")

    entry(str(base + 1), state, "etcd")  # a daemon
    entry(str(base + 2), tmp_path / "via-link", "kubelet")  # a daemon, by another path to it
    entry(str(base + 3), elsewhere, "containerd-shim-runc-v2", "-address", f"{state}/node/c.sock")
    entry(str(base + 4), elsewhere, "tool", f"{state}-old/x")  # a sibling that starts the same
    entry(str(base + 5), elsewhere, "tool", str(state))  # the folder itself, nothing under it
    entry(str(base + 6), None)  # a kernel thread, or a process gone mid-walk: nothing readable
    entry(str(os.getpid()), elsewhere, "pytest", f"{state}/x")  # this process
    entry("self", state, f"{state}/x")  # not a PID
    assert realnode.processes_of(state, proc=proc) == [base + 1, base + 2]
    assert realnode.processes_of(state, proc=proc, command_line=True) == [
        base + 1,
        base + 2,
        base + 3,
    ]
    assert realnode.processes_of(tmp_path / "via-link", proc=proc) == [base + 1, base + 2]
    assert realnode.processes_of(elsewhere, proc=proc) == sorted(
        [base + 3, base + 4, base + 5, os.getpid()]
    )


SPAWN_AND_EXIT = """
import sys
from pathlib import Path
from tenantry_dev.cluster import LocalCluster
cluster = LocalCluster(Path(sys.argv[1]), tied=sys.argv[2] == "tied", log=lambda _: None)
print(cluster._spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"]))
"""


@pytest.mark.parametrize("tied", [True, False])
def test_a_tied_clusters_processes_die_with_the_process_that_started_them(
    tmp_path: Path, tied: bool
) -> None:
    """Tests start tied clusters: a killed test run leaves none running. The CLI's
    `cluster up` must not: its cluster outlives the command."""
    done = subprocess.run(
        [sys.executable, "-c", SPAWN_AND_EXIT, str(tmp_path), "tied" if tied else "free"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(done.stdout.strip())
    try:
        gone = waiting.until(
            lambda: not realnode.runs_in(pid, tmp_path), timeout=10 if tied else 2, interval=0.05
        )
        assert gone is tied
    finally:
        if realnode.runs_in(pid, tmp_path):
            os.kill(pid, signal.SIGKILL)


def test_platform_install_without_a_cluster_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenantry_dev.__main__ import main

    assert main(["platform", "install", "--state-dir", str(tmp_path / "none")]) == 2
    assert "no kubeconfig at" in capsys.readouterr().err
