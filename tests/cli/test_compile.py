"""`seqtool compile`, and the warm-up every kernel-running command does before its clocks.

Compile costs are paid once per session (numba's cache); no test here starts from an empty
cache (tests/cli/test_bptt.py's first-run test is the one that does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from seqtool.commands.events import Events
from seqtool.core.rnn import warmup


def one_line_error(result):
    assert result.exit_code == 2, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


# ---------------------------------------------------------------------------------------
# seqtool compile


def test_compile_reports_every_cell_and_dtype_asked_and_loads_the_second_time(cli):
    first = cli("compile", "--cells", "rnn", "--dtypes", "float64", "--jobs", "1",
                "--format", "json")
    second = cli("compile", "--cells", "rnn", "--dtypes", "float64", "--jobs", "1",
                 "--format", "json")
    assert first.exit_code == 0 and second.exit_code == 0, first.stderr + second.stderr
    for result in (first, second):
        data = result.json()
        assert data["jobs"] == 1
        assert [(k["cell"], k["dtype"]) for k in data["kernels"]] == [("rnn", "float64")]
        assert all(k["seconds"] >= 0 and k["loaded"] == (k["compiled"] == 0)
                   for k in data["kernels"])
    assert second.json()["kernels"][0]["loaded"] is True  # a fresh process found the cache
    assert second.json()["kernels"][0]["compiled"] == 0


def test_compile_csv_has_a_row_per_job_in_the_order_asked(cli):
    result = cli("compile", "--cells", "gru,rnn", "--dtypes", "float64", "-j", "2",
                 "-f", "csv")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "cell,dtype,seconds,compiled,loaded"
    assert [line.split(",")[:2] for line in lines[1:]] == [["gru", "float64"],
                                                           ["rnn", "float64"]]


@pytest.mark.parametrize("flags, says", [
    (("--cells", "lstn"), "--cells is 'lstn' (did you mean lstm?)"),
    (("--dtypes", "float16"), "--dtypes is 'float16'"),
    (("--cells", "rnn,rnn"), "--cells names rnn twice"),
])
def test_unknown_cell_or_dtype_is_one_line_exit_2(cli, flags, says):
    assert says in one_line_error(cli("compile", *flags, "-f", "json"))


# ---------------------------------------------------------------------------------------
# the notice on the command line


def test_a_warm_cache_prints_nothing_about_compiling():
    command = [sys.executable, "-m", "seqtool", "bptt", "--steps", "3", "-f", "json"]
    env = dict(os.environ)
    first = subprocess.run(command, capture_output=True, text=True, env=env)
    second = subprocess.run(command, capture_output=True, text=True, env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    assert second.stderr == ""
    assert json.loads(first.stdout)["loss"] == json.loads(second.stdout)["loss"]


def test_a_slow_warm_up_is_announced_with_cell_dtype_and_seconds(cli, monkeypatch):
    """The CLI's wiring: a warm-up that calls on_slow and on_done shows two lines on
    stderr (not a terminal: no spinner); stdout keeps only the data."""
    real = warmup.warm_up

    def slow(cell, dtype, *, on_slow=None, on_done=None, **options):
        result = real(cell, dtype, **options)
        on_slow(cell, result.dtype)
        on_done(warmup.WarmUp(cell, result.dtype, 12.34, 7))
        return result

    monkeypatch.setattr(warmup, "warm_up", slow)
    result = cli("bptt", "--cell", "lstm", "--steps", "3", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "seqtool: compiling the lstm kernels (float64)...",
        "seqtool: compiled the lstm kernels (float64) in 12.3 s",
    ]
    assert result.json()["cell"] == "lstm"


# ---------------------------------------------------------------------------------------
# the warm-up comes before every clock of a run


def test_train_warms_up_before_on_start_and_before_the_training_clock(tmp_path,
                                                                        monkeypatch):
    from seqtool.commands import train
    from seqtool.config import TrainConfig
    from seqtool.core import training

    log = []
    real = warmup.warm_up

    def recorded(cell, dtype, **options):
        log.append(("warm_up", cell, dtype, options["spec"].task, options["optimizer"]))
        return real(cell, dtype, **options)

    class Clock:  # the training loop's clock, watched
        @staticmethod
        def perf_counter():
            log.append("clock")
            return real_time.perf_counter()

    real_time = training.time
    monkeypatch.setattr(warmup, "warm_up", recorded)
    monkeypatch.setattr(training, "time", Clock)
    config = TrainConfig.from_mapping({"data": "parity", "cell": "gru", "epochs": 1,
                                       "samples": 16, "out": str(tmp_path / "run")})
    events = Events(on_start=lambda report: log.append("on_start"))
    report = train.run(config, events)
    assert report.stop_reason == "completed"
    assert log[:3] == [("warm_up", "gru", "float32", "classify", "adam"), "on_start", "clock"]
    assert log.count("clock") >= 2 and all(entry == "clock" for entry in log[2:])


def test_bptt_warms_up_each_cell_in_float64_before_the_analysis(monkeypatch):
    from seqtool.commands import bptt
    from seqtool.config import BpttConfig
    from seqtool.core.rnn import bptt as analysis

    log = []
    real_warm, real_run = warmup.warm_up, analysis.run_bptt
    monkeypatch.setattr(warmup, "warm_up", lambda cell, dtype, **o: (
        log.append(("warm_up", cell, dtype)), real_warm(cell, dtype, **o))[1])
    monkeypatch.setattr(analysis, "run_bptt", lambda *a, **k: (
        log.append("analysis"), real_run(*a, **k))[1])
    config = BpttConfig.from_mapping({"cell": "rnn,lstm", "steps": 3})
    bptt.run(config, Events())
    assert log == [("warm_up", "rnn", "float64"), ("warm_up", "lstm", "float64"),
                   "analysis"]
