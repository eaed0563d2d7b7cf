"""Every command line of the README works as written (#13): each ```bash line runs in one
scratch directory, in order (training before the lines that use its runs), through a
`seqtool` on PATH, with pipes to jq and python as written.

Slow lines run at a reduced size (fewer epochs, samples, learning steps and sizes, one
seed); :func:`reduced` says exactly how, so a line that stops working still fails here. The
`--scheduler` line gets a Dask scheduler of its own on the address it names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import forkserver
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ("sentiment", "parity", "adding", "echo", "sine", "dyck", "reverse", "copy", "sort",
           "addition", "dates")


def readme_lines() -> list[str]:
    """The shell lines of the README's bash blocks (continuations joined); an install
    command keeps what follows its `&&` (CI has installed seqtool already)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.strip()
            if line.startswith("pip install"):
                line = line.split("&&", 1)[1].strip() if "&&" in line else ""
            if line and "pytest" not in line:
                lines.append(line)
    return lines


def reduced(line: str) -> str:
    """The line at a size a test can afford, with its meaning kept."""
    if " train-rnn " in line:
        if "--resume" in line:
            return re.sub(r"--epochs \d+", "--epochs 2", line)  # one more than trained
        line = re.sub(r"--epochs \d+", "--epochs 1", line)
        if "--epochs" not in line:
            line = line.replace(" train-rnn ", " train-rnn --epochs 1 ", 1)
        data = re.search(r"--data (\S+)", line)
        if data and data.group(1) in BUILTIN:
            line = line.replace(" train-rnn ", " train-rnn --samples 200 ", 1)
    if " compare-selectors " in line:
        line = line.replace(" compare-selectors ", " compare-selectors --repeats 2 ", 1)
        line = line.replace("--learn", "--learn --steps 30")
        line = re.sub(r"--sizes [0-9,]+", "--sizes 16,256", line)
    if " run recipes/cells-on-sentiment.yaml" in line:
        line = line.replace(".yaml", ".yaml --set params.epochs=1 --set params.samples=150 "
                            "--set 'sweep.grid.lr=[0.01]' --set 'sweep.seeds=[0]'", 1)
    return line


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A directory with the README's files (examples/, recipes/) and a `seqtool` on PATH
    that runs this interpreter's seqtool: a process per command, forked by a server that
    has done the imports once (tests/forkserver.py: ~0.4 s a line less)."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", work / "examples")
    shutil.copytree(ROOT / "recipes", work / "recipes")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", NO_COLOR="1",
               PYTHONPATH=str(ROOT))
    socket_dir = tempfile.mkdtemp(prefix="seqtool-fs-")  # short: a socket path has 108 bytes
    socket_path = os.path.join(socket_dir, "socket")
    server = forkserver.serve(socket_path, env)
    shim = bin_dir / "seqtool"
    shim.write_text(forkserver.client_script(socket_path))
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    (bin_dir / "python").symlink_to(sys.executable)
    yield work, env
    server.kill()
    server.wait()
    shutil.rmtree(socket_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def scheduler():
    """A Dask scheduler with one worker where the README's --scheduler line looks."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(scheduler_port=8786, n_workers=1, threads_per_worker=1,
                                  processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def run(line: str, scratch) -> subprocess.CompletedProcess:
    work, env = scratch
    return subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


LINES = readme_lines()


def test_the_readme_has_its_command_lines():
    assert len(LINES) >= 35
    assert all("seqtool" in line for line in LINES)


@pytest.mark.parametrize("line", LINES)
def test_readme_line_works(line, scratch, request):
    if "--scheduler" in line:
        request.getfixturevalue("scheduler")
    done = run(reduced(line), scratch)
    assert done.returncode == 0, f"{reduced(line)}\n...{done.stderr[-3000:]}"  # its end
    assert done.stdout.strip(), reduced(line)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    if "| jq" in line and "jq -c '.outputs'" in line:
        assert json.loads(done.stdout) == [[6.0, 1.0, 2.0]]  # the worked example's claim
    if "jq .val_loss" in line:
        assert all(float(v) > 0 for v in done.stdout.split())  # a number on every line
    if "verdict" in line and "--activation identity" in line:  # the README says exploding
        assert done.stdout.strip().strip('"') == "exploding"
    if "cells-on-sentiment.yaml --jobs 2" in line:  # 2 processes share the cores' threads
        from seqtool.core.parallel import available_cores

        configs = list((scratch[0] / "runs" / "cells-on-sentiment").rglob("config.yaml"))
        assert configs
        share = max(1, available_cores() // 2)
        assert all(f"threads: {share}\n" in c.read_text() for c in configs), share


BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"),
                    re.S)


def test_the_readme_has_its_python_example():
    assert BLOCKS and any("seqtool.attend" in block for block in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS)
def test_readme_python_block_works(block, scratch):
    """Each ```python block runs as written (in the README's scratch folder), and what its
    comments say it prints is what it prints."""
    work, env = scratch
    done = subprocess.run([sys.executable, "-c", block], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for claim in re.findall(r"print\(.*?\)\s+# (\[\[.*?\]\])", block):
        assert claim in done.stdout.replace("  ", " "), (claim, done.stdout)
    if "onnxruntime.InferenceSession" in block:  # seqtool-free inference labels as predict does
        text = re.search(r'"tokenizer_pattern"\], "(.*?)"', block).group(1)
        predicted = subprocess.run(["seqtool", "predict", "runs/sentiment", "--text", text,
                                    "-f", "json"], cwd=work, env=env, capture_output=True,
                                   text=True, check=True)
        assert done.stdout.strip() == json.loads(predicted.stdout)[0]["label"]
