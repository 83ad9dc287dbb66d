"""An exclusive lock on a run folder, so two training processes never write into the same run.

Why: two ``icrl-course train`` commands on one folder (a second terminal, a
job scheduled twice) would interleave their metrics and overwrite each
other's checkpoints, and nothing would say so. The first process to start
holds ``run_dir/lock`` until it exits; a second one is refused with the
first one's process id, host and start time.

How: the lock file is held with ``flock`` (the kernel lets go of it when its
process dies, even by SIGKILL) and records who holds it. A lock left by a
crashed run is stale, and taken over with a warning, when its process is
gone: ``flock`` says so, and so does the record (same host, and no living
process with that id and start time). A lock recorded by another host is
never taken over: this machine cannot see that host's processes, so the
message says which file to delete once that run is known to be dead.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

try:
    import fcntl
except ImportError:  # Windows: the record alone decides
    fcntl = None

LOCK_FILE = "lock"


class RunFolderError(RuntimeError):
    """A run folder that cannot be used: held by another run, not a folder, or not writable; the message says which."""


class RunFolderWarning(UserWarning):
    """Something in a run folder was repaired (a stale lock taken over, damaged metrics lines dropped)."""


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the block (creating the folder if needed); released on exit, whatever happens."""
    lock = RunLock(run_dir)
    try:
        yield lock.path
    finally:
        lock.release()


class RunLock:
    """The lock of one run folder, held from construction until ``release``."""

    def __init__(self, run_dir: str | Path):
        run_dir = Path(run_dir)
        _make_folder(run_dir)
        self.path = run_dir / LOCK_FILE
        self.me = {"pid": os.getpid(), "host": socket.gethostname(), "process_start": _process_start(os.getpid()),
                   "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.fd: int | None = None
        for _ in range(5):  # retried only when another process removed the file between our open and our lock
            if self._try_acquire():
                return
        raise RunFolderError(f"could not take the lock {self.path}: other processes keep replacing it")

    def _try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _flock(fd):
                raise RunFolderError(self._held_message(_read_record(fd)))
            if not _same_file(fd, self.path):
                os.close(fd)
                return False
            previous = _read_record(fd)
            if previous and not _is_stale(previous, self.me):
                raise RunFolderError(self._held_message(previous))
            if previous:
                warnings.warn(RunFolderWarning(
                    f"{self.path}: took over the lock of a run that is no longer running (process {previous.get('pid')} "
                    f"on {previous.get('host')}, since {previous.get('since')})"), stacklevel=3)
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(self.me) + "\n").encode(), 0)
            os.fsync(fd)
        except BaseException:
            if self.fd is None:
                os.close(fd)
            raise
        self.fd = fd
        return True

    def _held_message(self, holder: dict[str, Any] | None) -> str:
        who = (f"process {holder.get('pid')} on host {holder.get('host')} (since {holder.get('since')})"
               if holder else "another process")
        advice = ("wait for it to finish, or use another run folder"
                  if not holder or holder.get("host") == self.me["host"] else
                  f"if that run is no longer running, delete {self.path}")
        return f"run folder {self.path.parent} is in use by {who}: {advice}"

    def release(self) -> None:
        """Remove the lock file and let go of the lock (idempotent)."""
        if self.fd is None:
            return
        try:
            if _same_file(self.fd, self.path):
                self.path.unlink()
        finally:
            os.close(self.fd)
            self.fd = None


# ------------------------------------------------------------------ helpers
def _make_folder(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} is a file: give a folder (it is created when missing)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise RunFolderError(f"cannot write into run folder {run_dir} ({err.strerror}): choose a folder you can "
                             "write to") from None


def _flock(fd: int) -> bool:
    """Take the kernel lock without waiting; False when another process holds it (True where flock is unsupported)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            return True  # a file system without flock: the record alone decides
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _read_record(fd: int) -> dict[str, Any] | None:
    """The holder's record; None for an empty file, {} for an unreadable one (a crash while writing it)."""
    data = os.pread(fd, 4096, 0)
    if not data.strip():
        return None
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _is_stale(holder: dict[str, Any], me: dict[str, Any]) -> bool:
    """Whether a recorded holder is certainly gone. Called while we hold the kernel lock, which a living holder
    on this machine would have; the record is still checked, for file systems where flock does not reach."""
    if holder.get("host") != me["host"]:
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid == me["pid"]:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    started = holder.get("process_start")
    return started is not None and started != _process_start(pid)  # the id was reused by another process


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused process id apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])
