"""kill -9 at random moments of training (#14): does the run always resume, with each epoch
once in metrics.jsonl and the numbers of a run that was never killed?

Each trial starts `seqtool train-rnn` (parity, 30 short epochs, a checkpoint after each),
kills it with SIGKILL at a random moment (uniform over the run's length, so some land
during start-up, some in a step, some in a checkpoint's save), then
runs `--resume` to the end. Reported per trial: when it was killed, what the folder held
(whole checkpoint pairs, leftover temp files), whether the resume succeeded, whether
metrics.jsonl lists each epoch once, and whether the final metrics equal those of the
uninterrupted reference run (bit for bit: the run is deterministic).

    python benchmarks/bench_kill.py [--trials 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_compile import cpu_model  # noqa: E402

SEQTOOL = [sys.executable, "-m", "seqtool"]
# 30 short epochs: a checkpoint every ~0.1 s, so that many kills land in or near a save
TRAIN = ["train-rnn", "--data", "parity", "--samples", "600", "--seq-len", "10", "--hidden",
         "32", "--batch-size", "8", "--epochs", "30", "-f", "json"]


def epochs_in(out: Path) -> list[int]:
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines() if line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    root = Path(tempfile.mkdtemp(prefix="seqtool-kill-"))
    env = dict(os.environ, NO_COLOR="1")
    print(f"CPU: {cpu_model()}; {options.trials} trials; seed {options.seed}")

    start = time.perf_counter()
    reference = subprocess.run([*SEQTOOL, *TRAIN, "--out", str(root / "reference")], env=env,
                               capture_output=True, text=True, check=True)
    length = time.perf_counter() - start
    final = json.loads(reference.stdout)["history"]
    print(f"uninterrupted run: {length:.1f} s, {len(final)} epochs\n")
    print(f"{'trial':>5} {'killed at':>9} {'pairs':>9} {'temps':>5} {'resumed':>7} "
          f"{'epochs once':>11} {'same numbers':>12}")
    clean = 0
    for trial in range(options.trials):
        out = root / f"trial-{trial}"
        moment = rng.uniform(0.05, length)
        proc = subprocess.Popen([*SEQTOOL, *TRAIN, "--out", str(out)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        names = {p.name for p in out.iterdir()} if out.exists() else set()
        pairs = [n for n in ("model", "last") if f"{n}.json" in names]
        temps = [n for n in names if ".tmp" in n or ".prev." in n]
        if "last.json" in names:
            resumed = subprocess.run([*SEQTOOL, "train-rnn", "--resume", str(out), "-f", "json"],
                                     env=env, capture_output=True, text=True)
        else:  # killed before the first checkpoint: nothing to resume, start again
            resumed = subprocess.run([*SEQTOOL, *TRAIN, "--out", str(out)], env=env,
                                     capture_output=True, text=True)
            if resumed.returncode == 2 and "already holds a run" in resumed.stderr:
                resumed = subprocess.run([*SEQTOOL, "train-rnn", "--resume", str(out), "-f",
                                          "json"], env=env, capture_output=True, text=True)
        ok = resumed.returncode == 0
        once = epochs_in(out) == list(range(1, len(final) + 1))
        history = json.loads(resumed.stdout)["history"] if ok else None
        same = ok and [{k: v for k, v in r.items() if k not in ("seconds", "tokens_per_s")}
                       for r in history] == [
                      {k: v for k, v in r.items() if k not in ("seconds", "tokens_per_s")}
                      for r in final]
        clean += ok and once and same
        print(f"{trial:>5} {moment:>8.2f}s {'+'.join(pairs) or '-':>9} {len(temps):>5} "
              f"{'yes' if ok else 'NO':>7} {'yes' if once else 'NO':>11} "
              f"{'yes' if same else 'NO':>12}" + ("" if ok else f"  {resumed.stderr.strip()}"))
    print(f"\n{clean} of {options.trials} trials resumed to the reference run's numbers with "
          "each epoch once")


if __name__ == "__main__":
    main()
