"""Start-up cost of `seqtool attend --query 3,-1`, against the floor its libraries set.

Runs, alternating so that drift hits both alike:
  floor:   python -c "import numpy, typer, rich.console, rich.table"
  json:    seqtool attend --query 3,-1            (stdout is a pipe, so JSON)
  table:   seqtool attend --query 3,-1 --format table
and prints each median (ms) and the ratios to the floor. Goal: json ratio <= 1.15.

    python benchmarks/bench_attend_startup.py [--repeats 31]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

GOAL = 1.15


def seqtool_command() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "seqtool")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "seqtool"]


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    args = parser.parse_args()
    seqtool = seqtool_command()
    commands = {
        "floor (import numpy, typer, rich)": [
            sys.executable, "-c", "import numpy, typer, rich.console, rich.table"
        ],
        "seqtool attend --query 3,-1 (json)": [*seqtool, "attend", "--query", "3,-1"],
        "seqtool attend --query 3,-1 --format table": [
            *seqtool, "attend", "--query", "3,-1", "--format", "table"
        ],
    }
    for command in commands.values():  # warm the disk cache and __pycache__
        wall(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            times[name].append(wall(command))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    floor = next(iter(medians.values()))
    print(f"{'command':<46} {'median ms':>10} {'ratio':>7}")
    for name, median in medians.items():
        print(f"{name:<46} {median * 1e3:>10.1f} {median / floor:>7.2f}")
    json_ratio = list(medians.values())[1] / floor
    verdict = "met" if json_ratio <= GOAL else "NOT met"
    print(f"goal: json ratio <= {GOAL}: {verdict} ({json_ratio:.2f}); repeats {args.repeats}")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # then every run compiles seqtool's sources (the floor's libraries have their .pyc
        # from installation): an installed seqtool never pays that
        print("note: PYTHONDONTWRITEBYTECODE is set, so each run compiles seqtool's sources; "
              "unset it to measure what an installed seqtool costs")


if __name__ == "__main__":
    main()
