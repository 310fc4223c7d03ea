"""The lossy FUSE disk (`tests.support.lossyfs`) behaves as its model says.

The durability tests lean on it: if it lost synced data, or kept unsynced data, their
verdicts would mean nothing. Each test mounts it over a fresh folder, works through
the mount with plain file calls, crashes it (SIGKILL + unmount) and reads the folder
beneath, the disk after the reboot. The mount is removed whatever happens.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import pytest

from tests.support import lossyfs


@dataclass
class Disk:
    disk: Path
    mnt: Path
    proc: Popen[bytes]

    def crash(self) -> None:
        lossyfs.unmount(self.proc, self.mnt, crash=True)


@pytest.fixture
def lossy(tmp_path: Path) -> Iterator[Disk]:
    disk, mnt = tmp_path / "disk", tmp_path / "mnt"
    disk.mkdir()
    mnt.mkdir()
    proc = lossyfs.mount(disk, mnt, log=tmp_path / "lossyfs.log")
    try:
        yield Disk(disk, mnt, proc)
    finally:
        lossyfs.unmount(proc, mnt, crash=True)
        assert not lossyfs.is_mounted(mnt)


def append(path: Path, data: bytes, *, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fdatasync(fd)
    finally:
        os.close(fd)


def test_reads_through_the_mount_see_unsynced_writes(lossy: Disk) -> None:
    append(lossy.mnt / "f", b"one", sync=True)
    append(lossy.mnt / "f", b"two", sync=False)
    assert (lossy.mnt / "f").read_bytes() == b"onetwo"
    assert (lossy.mnt / "f").stat().st_size == 6
    assert (lossy.disk / "f").read_bytes() == b"one"  # the platter, before any crash


def test_a_crash_keeps_what_was_fsynced_and_drops_the_rest(lossy: Disk) -> None:
    append(lossy.mnt / "f", b"synced;", sync=True)
    append(lossy.mnt / "f", b"closed but not synced;", sync=False)
    append(lossy.mnt / "g", b"never synced", sync=False)
    lossy.crash()
    assert not lossyfs.is_mounted(lossy.mnt)
    assert (lossy.disk / "f").read_bytes() == b"synced;"
    assert (lossy.disk / "g").read_bytes() == b""  # the name is kept, its content not


def test_an_fsync_after_more_writes_keeps_them_all(lossy: Disk) -> None:
    for n in range(50):
        append(lossy.mnt / "f", b"%d," % n, sync=n % 10 == 9)
    lossy.crash()
    assert (lossy.disk / "f").read_bytes() == b"".join(b"%d," % n for n in range(50))


def test_renames_and_overwrites_follow_the_file(lossy: Disk) -> None:
    (lossy.mnt / "dir").mkdir()
    fd = os.open(lossy.mnt / "dir" / "tmp", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"0123456789")
        os.pwrite(fd, b"ab", 2)
        os.fsync(fd)
        os.pwrite(fd, b"ZZ", 0)  # not synced
    finally:
        os.close(fd)
    os.rename(lossy.mnt / "dir" / "tmp", lossy.mnt / "dir" / "final")
    assert (lossy.mnt / "dir" / "final").read_bytes() == b"ZZab456789"
    lossy.crash()
    assert sorted(os.listdir(lossy.disk / "dir")) == ["final"]
    assert (lossy.disk / "dir" / "final").read_bytes() == b"01ab456789"


def test_truncation_is_content_too(lossy: Disk) -> None:
    append(lossy.mnt / "f", b"0123456789", sync=True)
    os.truncate(lossy.mnt / "f", 4)
    assert (lossy.mnt / "f").read_bytes() == b"0123"
    lossy.crash()
    assert (lossy.disk / "f").read_bytes() == b"0123456789"
