"""The suite's precompile (tests/precompile.py) runs each job once across the workers that
share its folder, and a worker waits for the jobs another one holds."""

from __future__ import annotations

import fcntl
import threading
import time

import precompile
import pytest


@pytest.fixture
def jobs_run(monkeypatch):
    ran = []
    monkeypatch.setattr("seqtool.commands.compile.compile_job",
                        lambda cell, dtype: ran.append((cell, dtype)))
    return ran


def every_job():
    return precompile.jobs()


def test_the_jobs_are_every_registered_cell_in_both_dtypes_slowest_first():
    from seqtool.core.rnn.cells import cell_names

    jobs = precompile.jobs()
    assert sorted(jobs) == sorted((c, d) for c in cell_names() for d in ("float32", "float64"))
    assert jobs[:2] == [("lstm", "float32"), ("lstm", "float64")]


def test_each_job_runs_once_per_folder(tmp_path, jobs_run):
    assert precompile.precompile(tmp_path) == every_job()
    assert precompile.precompile(tmp_path) == []  # another worker, later: all done
    assert jobs_run == every_job()


def test_a_job_another_worker_holds_is_skipped_then_waited_for(tmp_path, jobs_run):
    tmp_path.mkdir(exist_ok=True)
    held = open(tmp_path / "gru-float32.lock", "w")  # "the other worker" compiling it
    fcntl.flock(held, fcntl.LOCK_EX)
    released = []

    def finish_later():
        time.sleep(0.3)
        (tmp_path / "gru-float32.done").touch()
        released.append(time.monotonic())
        held.close()

    other = threading.Thread(target=finish_later)
    other.start()
    ran = precompile.precompile(tmp_path)
    returned = time.monotonic()
    other.join()
    assert ran == [job for job in every_job() if job != ("gru", "float32")]
    assert released and returned >= released[0]  # it waited for the held job
