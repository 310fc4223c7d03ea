"""A FUSE file system that loses every write not fsynced when it dies: a node crash, for tests.

Why: Redis acknowledges a write once it is in the append-only file, but "in the file"
may mean only the kernel's page cache, which a process kill keeps and a power loss
or kernel crash drops. To show what each ingestion durability level promises
(`tests/integration/ingestion/test_durability.py`), a test needs that second kind of
failure for real, on this machine, without crashing it.

The model, a disk with a volatile write cache:

- the "disk" is a real folder, ``backing``: what survives the crash;
- file contents written through the mount stay in this process's memory until the
  file is fsynced (``fsync``/``fdatasync``), which writes what changed to ``backing``;
  closing a file does not (as on a real file system);
- names (create, mkdir, rename, unlink, rmdir) and attributes reach ``backing`` at
  once, as a file system with a journal that commits them immediately would. That is
  kinder than a real crash (it never loses a name), so every loss seen is a lost
  *content* write;
- the crash is SIGKILL of this process (its memory, the unsynced writes, is gone),
  then unmounting the dead mount (`unmount`). ``backing`` is then the disk after the
  reboot.

Run: ``python -m tests.support.lossyfs BACKING MOUNTPOINT`` (root; libfuse3 from the
Debian package fuse3, the binding is mfusepy). It stays in the foreground until
unmounted or killed. `mount` and `unmount` start and remove it from a test.
Single-threaded (``nothreads``): every operation is serialized, so no locking.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mfusepy

from tests.support.wait import eventually, stop_process


class LossyFS(mfusepy.Operations):  # type: ignore[misc]  # mfusepy ships no type hints
    """Path-based operations on ``backing``. ``cache`` holds the current content of every
    file written through the mount; ``unsynced`` the lowest offset of each file that
    changed since its last fsync (from there on, the disk may differ from the cache)."""

    use_ns = True  # utimens gets nanoseconds

    def __init__(self, backing: Path) -> None:
        self.backing = backing
        self.cache: dict[str, bytearray] = {}
        self.unsynced: dict[str, int] = {}

    def _real(self, path: str) -> str:
        return str(self.backing) + path

    def _content(self, path: str) -> bytearray:
        """The file's current content, read from the disk into the cache on first use."""
        data = self.cache.get(path)
        if data is None:
            with open(self._real(path), "rb") as f:
                data = bytearray(f.read())
            self.cache[path] = data
        return data

    def _changed(self, path: str, offset: int) -> None:
        self.unsynced[path] = min(offset, self.unsynced.get(path, offset))

    def _forget(self, path: str) -> None:
        self.cache.pop(path, None)
        self.unsynced.pop(path, None)

    # names and attributes: straight to the disk
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        st = os.lstat(self._real(path))
        attrs = {
            key: getattr(st, key)
            for key in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_ino")
        }
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        if path in self.cache:
            attrs["st_size"] = len(self.cache[path])
        return attrs

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._real(path), amode):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._real(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        return 0

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        os.close(os.open(self._real(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        return 0

    def open(self, path: str, flags: int) -> int:
        if not os.path.exists(self._real(path)):
            raise mfusepy.FuseOSError(errno.ENOENT)
        return 0

    def unlink(self, path: str) -> int:
        os.unlink(self._real(path))
        self._forget(path)
        return 0

    def rename(self, old: str, new: str) -> int:
        os.rename(self._real(old), self._real(new))
        self._forget(new)
        for path in [p for p in self.cache if p == old or p.startswith(old + "/")]:
            moved = new + path[len(old) :]
            self.cache[moved] = self.cache.pop(path)
            if path in self.unsynced:
                self.unsynced[moved] = self.unsynced.pop(path)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            os.utime(self._real(path))
        else:
            os.utime(self._real(path), ns=times)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._real(path))
        return {
            key: getattr(st, key)
            for key in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_namemax")
        }

    # contents: in memory until fsync
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        if path in self.cache:
            return bytes(self.cache[path][offset : offset + size])
        with open(self._real(path), "rb") as f:
            f.seek(offset)
            return f.read(size)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        content = self._content(path)
        self._changed(path, min(offset, len(content)))
        if offset > len(content):
            content.extend(bytes(offset - len(content)))
        content[offset : offset + len(data)] = data
        return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        content = self._content(path)
        self._changed(path, min(length, len(content)))
        del content[length:]
        content.extend(bytes(length - len(content)))
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        """Write what changed since the last fsync, from its lowest offset on. Never
        truncate first: killed halfway (a crash during an fsync that has not returned),
        the disk keeps its old bytes plus part of the new ones, as a real one would."""
        start = self.unsynced.pop(path, None)
        if start is not None:
            content = self.cache[path]
            with open(self._real(path), "r+b") as f:
                f.seek(start)
                f.write(content[start:])
                f.truncate(len(content))
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0  # close(2) makes nothing durable

    def release(self, path: str, fh: int) -> int:
        return 0


def mount(
    backing: Path, mountpoint: Path, *, log: Path, timeout: float = 10.0
) -> subprocess.Popen[bytes]:
    """Start the file system on ``mountpoint`` over ``backing``; return once it is mounted.

    The caller owns the process: `unmount` it (crash or not), also when the test fails."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.lossyfs", str(backing), str(mountpoint)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def mounted() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"lossyfs exited: {log.read_text()[-2000:]}")
        return is_mounted(mountpoint)

    try:
        eventually(mounted, what="lossyfs mounted", timeout=timeout, interval=0.02)
    except BaseException:
        unmount(proc, mountpoint)
        raise
    return proc


def unmount(proc: subprocess.Popen[bytes], mountpoint: Path, *, crash: bool = True) -> None:
    """Stop the file system and remove the mount. ``crash``: SIGKILL first, so every
    write not fsynced is lost; else a clean unmount (the kernel flushes nothing to us
    either way: only fsync makes a write durable here)."""
    if crash and proc.poll() is None:
        proc.kill()
    # A dead FUSE mount fails stat (ENOTCONN), so os.path.ismount says False: ask the
    # kernel's table. Lazy: a process still holding a file there cannot keep it alive.
    if is_mounted(mountpoint):
        subprocess.run(["umount", "-l", str(mountpoint)], check=True, capture_output=True)
    stop_process(proc, what="lossyfs")


def is_mounted(mountpoint: Path) -> bool:
    """Whether ``mountpoint`` is in this process's mount table (dead or alive)."""
    target = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo") as table:
        return any(line.split()[4] == target for line in table)


def main() -> None:
    backing, mountpoint = Path(sys.argv[1]).resolve(), sys.argv[2]
    mfusepy.FUSE(LossyFS(backing), mountpoint, foreground=True, nothreads=True, fsname="lossyfs")


if __name__ == "__main__":
    main()
