"""What a first run costs on a new machine: numba's compile time, measured from an empty cache.

Every measurement is a fresh process with an empty temporary NUMBA_CACHE_DIR, so nothing
is loaded from an earlier compile. One table:

  warm_up   per cell and dtype, the cold warm-up (seqtool.core.rnn.warmup.warm_up):
            "layer" is the cell's forward and backward as `seqtool bptt` runs them, "all"
            adds the model path of training and inference (what `seqtool compile` does
            per job); "compile s" is measured inside the process (imports excluded),
            "compilations" is numba's count (kernels and the helpers they call)
  seqtool   each command's first run in an empty cache: the compile it announced (its
            "compiled ... in N s" line on stderr) and its wall time, and its wall time
            run again in the now warm cache

    python benchmarks/bench_compile.py [--cells rnn,gru,lstm] [--dtypes float32,float64]
                                       [--no-kernels] [--no-commands]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

from machine import cpu_name  # benchmarks/machine.py

SEQTOOL = [sys.executable, "-m", "seqtool"]
COMPILED = re.compile(r"compiled the (\w+) kernels \((\w+)\) in ([0-9.]+) s")

KERNEL_JOB = """
import json, sys
from seqtool.core.rnn.warmup import warm_up
from seqtool.commands.compile import compile_job
cell, dtype, what = sys.argv[1:4]
if what == "layer":
    r = warm_up(cell, dtype)
    print(json.dumps({"seconds": r.seconds, "compiled": r.compiled}))
else:
    print(json.dumps(compile_job(cell, dtype)))
"""


def run(command: list[str], cache: str, cwd: str) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds, done


def kernel_rows(cells: list[str], dtypes: list[str]) -> list[list[str]]:
    rows = []
    for cell in cells:
        for dtype in dtypes:
            for what in ("layer", "all"):
                with tempfile.TemporaryDirectory() as cache:
                    wall, done = run([sys.executable, "-c", KERNEL_JOB, cell, dtype, what],
                                     cache, os.getcwd())
                result = json.loads(done.stdout)
                rows.append([f"warm_up {cell} {dtype} ({what})", f"{result['seconds']:.1f}",
                             str(result["compiled"]), f"{wall:.1f}", ""])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    return rows


def command_rows(cells: list[str]) -> list[list[str]]:
    commands = []
    for cell in cells:
        commands.append(["bptt", "--cell", cell, "--steps", "5", "-f", "json"])
    for cell in cells:
        commands.append(["train-rnn", "--data", "parity", "--cell", cell, "--epochs", "1",
                         "--samples", "64", "--out", "RUN", "-f", "json"])
    commands.append(["attend", "-q", "3,-1", "-f", "json"])
    rows = []
    for args in commands:
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as work:
            shown = " ".join(a for a in args if a not in ("--out", "RUN", "-f", "json"))
            cold, done = run(SEQTOOL + [a.replace("RUN", "run1") for a in args], cache, work)
            announced = [float(m.group(3)) for m in COMPILED.finditer(done.stderr)]
            warm, _ = run(SEQTOOL + [a.replace("RUN", "run2") for a in args], cache, work)
        rows.append([f"seqtool {shown}", f"{sum(announced):.1f}" if announced else "none",
                     "", f"{cold:.1f}", f"{warm:.1f}"])
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="rnn,gru,lstm")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--no-kernels", action="store_true")
    parser.add_argument("--no-commands", action="store_true")
    args = parser.parse_args()
    cells, dtypes = args.cells.split(","), args.dtypes.split(",")
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical cores); Python "
          f"{platform.python_version()}; numba {__import__('numba').__version__}")
    rows = [] if args.no_kernels else kernel_rows(cells, dtypes)
    rows += [] if args.no_commands else command_rows(cells)
    header = ["what (empty NUMBA_CACHE_DIR)", "compile s", "compilations", "cold wall s",
              "warm wall s"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")


if __name__ == "__main__":
    main()
