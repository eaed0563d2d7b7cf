"""The long fuzz of #14: thousands of hostile cases, each `seqtool` in its own process, with
its answer checked and its time and peak memory measured.

The cases are those of the suite's quick fuzz (``tests/fuzz_cases.py``: every flag of every
command, stdin, files, forged run directories, random recipes), drawn deterministically
from --seed. Each runs in a folder of its own as its working directory, with a warm numba
cache. Reported:

  answers     per kind of case: exit 0 / 1 / 2 and hangs (past --timeout)
  reproducers the issue's fixed cases of each class (sizes, endless work, bombs, a lying
              file): exit, time and peak memory, one by one
  problems    tracebacks, internal errors, raw warnings, multi-line errors, other exit
              codes, hangs, and files written outside the case's folder: each with
              reproducers (should all be 0)
  refusals    the cases answered with exit 2 (bad input): time to refuse and peak memory
              (median, 99th percentile, max), and any that took over 10 s or 1 GiB

    python benchmarks/bench_fuzz.py [--cases 2000] [--seed 0] [--jobs 2] [--timeout 60]
                                    [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_compile import cpu_model  # noqa: E402
from fuzz_cases import KINDS, REPRODUCERS, prepare, problems, train_runs  # noqa: E402

SEQTOOL = [sys.executable, "-m", "seqtool"]
GIB = 1 << 30
REFUSE_SECONDS = 10.0


def draw_cases(n: int, seed: int) -> list:
    """n cases, as many of each kind, the same for the same seed."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as seeded

    drawn = []
    for i, strategy in enumerate(KINDS.values()):
        share = n // len(KINDS) + (i < n % len(KINDS))
        found: list = []

        @seeded(seed)
        @settings(max_examples=share, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy())
        def collect(case):
            found.append(case)

        collect()
        drawn.extend(found[:share])
    return drawn


def run_case(case, folder: Path, runs: Path, env: dict, timeout: float) -> dict:
    """Run one case in its own process; its answer, wall time and peak memory (wait4)."""
    folder.mkdir()
    args, stdin = prepare(case, folder, runs)
    args = [a.replace("\x00", "") for a in args]  # no process argument can hold a NUL
    (folder / ".stdin").write_bytes((stdin or "").encode("utf-8", "surrogateescape"))
    with open(folder / ".stdin", "rb") as given, open(folder / ".out", "wb") as out, \
            open(folder / ".err", "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([*SEQTOOL, *args], stdin=given, stdout=out, stderr=err,
                                cwd=folder, env=env)
        hung = threading.Event()

        def kill():
            hung.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    stderr = (folder / ".err").read_bytes().decode("utf-8", "replace")
    found = problems(proc.returncode, stderr)
    if hung.is_set():
        found = ["hang"]
    result = {"case": str(case), "kind": case.kind.split(" ")[0], "exit": proc.returncode,
              "seconds": seconds, "peak_bytes": usage.ru_maxrss * 1024, "problems": found,
              "stderr": stderr[-300:]}
    shutil.rmtree(folder, ignore_errors=True)
    return result


def listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size)
                  for p in folder.rglob("*") if p.is_file())


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--json", help="write every case's result here")
    options = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="seqtool-fuzz-"))
    env = dict(os.environ, NO_COLOR="1", COLUMNS="100")
    env.setdefault("NUMBA_CACHE_DIR", str(root / "numba-cache"))
    print(f"CPU: {cpu_model()}; {os.cpu_count()} cores; {options.jobs} jobs; "
          f"timeout {options.timeout:g} s; seed {options.seed}")
    started = time.perf_counter()
    runs = root / "runs"
    train_runs(runs, lambda args: subprocess.run([*SEQTOOL, *args], env=env,
                                                 capture_output=True).returncode)
    before = listing(runs)
    print("\nthe issue's reproducers (each must be exit 2, quick and small):")
    for i, case in enumerate(REPRODUCERS):
        r = run_case(case, root / f"case-r{i}", runs, env, options.timeout)
        verdict = "ok" if r["exit"] == 2 and not r["problems"] else f"FAIL {r['problems']}"
        print(f"  {r['seconds']:5.2f} s {r['peak_bytes'] / 2**20:5.0f} MiB exit {r['exit']} "
              f"{verdict:<4} {str(case)[:90]}")
    drawn = draw_cases(options.cases, options.seed)
    print(f"{len(drawn)} cases drawn; running...", flush=True)
    with ThreadPoolExecutor(options.jobs) as pool:
        results = list(pool.map(
            lambda ic: run_case(ic[1], root / f"case-{ic[0]}", runs, env, options.timeout),
            enumerate(drawn)))
    elapsed = time.perf_counter() - started
    outside = sorted(p.name for p in root.iterdir()
                     if p.name not in ("runs", "numba-cache") and not p.name.startswith("case-"))
    if listing(runs) != before:
        outside.append("runs/ (the trained runs changed)")

    by_kind: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        by_kind[r["kind"]]["hang" if "hang" in r["problems"] else f"exit {r['exit']}"] += 1
    print(f"\n{len(results)} cases in {elapsed:.0f} s\n")
    print(f"{'kind':<8} {'cases':>6} {'exit 0':>7} {'exit 1':>7} {'exit 2':>7} {'hang':>5}")
    for kind, counts in sorted(by_kind.items()):
        print(f"{kind:<8} {sum(counts.values()):>6} {counts['exit 0']:>7} {counts['exit 1']:>7} "
              f"{counts['exit 2']:>7} {counts['hang']:>5}")

    print("\nproblems (all should be 0):")
    kinds = Counter(p for r in results for p in r["problems"])
    for name in ("traceback", "internal error", "raw warning", "hang"):
        print(f"  {name:<22} {kinds.pop(name, 0)}")
    for name, count in sorted(kinds.items()):
        print(f"  {name:<22} {count}")
    print(f"  {'written outside':<22} {len(outside)}" + (f": {outside}" if outside else ""))
    for r in [r for r in results if r["problems"]][:20]:
        print(f"    {r['problems']}: {r['case']}\n      {r['stderr'].strip()[-200:]}")

    refused = [r for r in results if r["exit"] == 2 and not r["problems"]]
    if refused:
        times = [r["seconds"] for r in refused]
        peaks = [r["peak_bytes"] / 2**20 for r in refused]
        print(f"\nrefusals (exit 2): {len(refused)}")
        print(f"  time to refuse   median {statistics.median(times):.2f} s, p99 "
              f"{percentile(times, 0.99):.2f} s, max {max(times):.2f} s")
        print(f"  peak memory      median {statistics.median(peaks):.0f} MiB, p99 "
              f"{percentile(peaks, 0.99):.0f} MiB, max {max(peaks):.0f} MiB")
        over = [r for r in refused if r["seconds"] > REFUSE_SECONDS or r["peak_bytes"] > GIB]
        print(f"  over 10 s or 1 GiB: {len(over)}")
        for r in over[:10]:
            print(f"    {r['seconds']:.1f} s, {r['peak_bytes'] / 2**20:.0f} MiB: {r['case']}")
    everything = [r["peak_bytes"] / 2**20 for r in results]
    print(f"\nall cases: peak memory max {max(everything):.0f} MiB; slowest "
          f"{max(r['seconds'] for r in results):.1f} s")
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=1))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
