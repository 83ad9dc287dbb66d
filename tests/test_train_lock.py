"""The run-folder lock (root cause 8): one run per folder, released on exit, stale locks taken over, others refused."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from icrl_course.train.lock import LOCK_FILE, RunFolderError, RunFolderWarning, RunLock, run_lock

HOLD = """
import sys, time
from icrl_course.train.lock import RunLock
RunLock(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


def hold_in_another_process(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_lock_is_released_on_exit_even_after_an_error(tmp_path):
    with pytest.raises(KeyError):
        with run_lock(tmp_path / "run") as path:
            assert json.loads(path.read_text())["pid"] == os.getpid()
            raise KeyError("boom")
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    with run_lock(tmp_path / "run"):
        pass


def test_a_second_run_in_the_same_folder_is_refused_naming_the_first(tmp_path):
    holder = hold_in_another_process(tmp_path)
    try:
        with pytest.raises(RunFolderError, match=f"is in use by process {holder.pid} on host {socket.gethostname()}"):
            RunLock(tmp_path)
        with pytest.raises(RunFolderError, match="wait for it to finish, or use another run folder"):
            with run_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_warning(tmp_path):
    holder = hold_in_another_process(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / LOCK_FILE).exists()  # SIGKILL leaves the file behind
    with pytest.warns(RunFolderWarning, match=f"took over the lock of a run that is no longer running \\(process {holder.pid}"):
        lock = RunLock(tmp_path)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()


@pytest.mark.parametrize(("record", "stale"), [
    pytest.param({"pid": 2**22 + 12345, "host": socket.gethostname()}, True, id="dead-pid-same-host"),
    pytest.param({"pid": os.getpid(), "host": socket.gethostname(), "process_start": -1}, True, id="own-pid"),
    pytest.param({"pid": 1, "host": socket.gethostname(), "process_start": -1}, True, id="pid-reused"),
    pytest.param({"pid": 12345, "host": "elsewhere.example"}, False, id="other-host"),
    pytest.param("not json at all", True, id="torn-record"),
])
def test_a_recorded_lock_is_stale_only_when_its_process_is_certainly_gone(tmp_path, record, stale):
    (tmp_path / LOCK_FILE).write_text(record if isinstance(record, str) else json.dumps(record))
    if stale:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            RunLock(tmp_path).release()
        assert [w.category for w in caught] == ([RunFolderWarning] if isinstance(record, dict) else [])
        assert not (tmp_path / LOCK_FILE).exists()
    else:
        with pytest.raises(RunFolderError, match=f"in use by process 12345 on host elsewhere.example .*: if that run "
                                                 f"is no longer running, delete {tmp_path / LOCK_FILE}"):
            RunLock(tmp_path)


@pytest.mark.parametrize("make", [
    pytest.param(lambda p: p.write_text("x"), id="a-file"),
    pytest.param(lambda p: None, id="missing-is-created"),
])
def test_a_run_folder_that_is_a_file_is_refused_and_a_missing_one_created(tmp_path, make):
    run_dir = tmp_path / "run"
    make(run_dir)
    if run_dir.is_file():
        with pytest.raises(RunFolderError, match=f"run folder {run_dir} is a file"):
            RunLock(run_dir)
    else:
        RunLock(run_dir).release()
        assert run_dir.is_dir() and list(run_dir.iterdir()) == []


def test_an_unwritable_run_folder_is_refused():
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc")
    with pytest.raises(RunFolderError, match="cannot write into run folder /proc/"):
        RunLock("/proc/icrl-course-run")


def test_taking_and_releasing_the_lock_is_quick(tmp_path):
    started = time.perf_counter()
    for _ in range(100):
        RunLock(tmp_path).release()
    assert time.perf_counter() - started < 5
