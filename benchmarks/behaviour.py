"""Record, or compare against a record, what every README example and shipped recipe prints.

A refactoring that promises "behaviour unchanged" runs this before and after:

    python benchmarks/behaviour.py record /tmp/before     # on the old code
    python benchmarks/behaviour.py compare /tmp/before    # on the new code

Each command runs in a fresh temporary directory (so run directories such as runs/sentiment
are its own) with its output in every machine format (json, csv, and jsonl where a command
streams); timing fields (microseconds, seconds, tokens/s) and the temporary path are masked,
since they differ from run to run. Exit 1 if anything differs, naming the command and the
first differing line.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBLEM_YAML = """\
W_xh: [[0.5, -0.3], [0.2, 0.8]]
W_hh: [[0.9, -0.4], [0.3, 0.7]]
W_hy: [[1.0, -1.0]]
x: [[1, 0], [0, 1], [1, 1], [0.5, -1], [1, -0.5]]
y: [[0.5], [-0.2], [0.1], [0.3], [0.0]]
"""

# (label, arguments, stdin, formats): every README example, in the formats a pipe may ask for.
ATTEND = [
    "--query 3,-1 --selector argmax",
    "-q 3,-1;1,2 -k 1,5;1,0;1,3 -v 1,0;0,1;1,1 --selector sparsemax",
    "-q 3,-1 --selector entmax --alpha 1.5 --scale sqrt",
    "-q 3,-1 --selector topk --k 2 --temperature 0.5",
    "-q 3,-1 --selector gumbel --seed 3 --hard",
    "-q 3,-1 --selector softmax --grad --upstream 1,0,0",
    "-q 3,-1 --selector argmax --explain",
    "--query 3,-1",
    "-q 3,-1 --selector entmax --alpha 1.2 --grad",
    "-q 3,-1 --selector st-argmax --grad --temperature 2",
]
COMPARE = [
    "--query 3,-1 --repeats 1",
    "-q 3,-1 -s softmax,argmax,st-argmax --cost --sizes 16,256 --learn --steps 60 --explain --repeats 1",
    "--cost --sizes 16,256 --dim 8 --repeats 1",
    "-q 3,-1;1,2 --learn --steps 40 --pairs 4 --vocab 16 --repeats 1",
]
BPTT = [
    "--steps 20 --radius 0.8",
    "--steps 20 --radius 1.5 --activation identity",
    "--steps 3 --activation sigmoid --explain",
    "--problem problem.yaml --truncate 3 --check",
    "--steps 30 --cell lstm",
    "--steps 30 --cell rnn,gru,lstm",
    "--steps 8 --cell gru --truncate 3 --check",
    "--steps 6 --loss cross_entropy --target-at last --output-size 3",
]
TRAIN = [
    # (setup commands run first, the command recorded)
    "--data sentiment --cell gru --hidden 16 --lr 0.01 --epochs 2 --samples 300 --out runs/sentiment",
    "--data sentiment --cell bow --lr 0.01 --epochs 2 --samples 300 --out runs/bow",
    "--data parity --seq-len 6 --cell gru --hidden 16 --lr 0.01 --epochs 2 --samples 200 --out runs/parity",
    "--data dyck --cell lstm --hidden 16 --lr 0.01 --epochs 2 --samples 200 --out runs/dyck",
    "--data echo --delay 3 --cell rnn --epochs 2 --samples 200 --explain --out runs/echo",
    "--data sine --cell lstm --hidden 8 --epochs 2 --samples 100 --out runs/sine",
    "--data adding --cell rnn --hidden 8 --epochs 2 --samples 100 --layers 2 --out runs/adding",
]
USE = [
    ("predict", "runs/sentiment --text 'fun but far too long' --text 'not bad at all'"),
    ("predict", "runs/echo --text '1 2 3 4 5'"),
    ("sample", "runs/dyck --length 40 --temperature 0.8 --seed 3"),
    ("sample", "runs/dyck --length 20 --temperature 0"),
    ("evaluate", "runs/sentiment --data sentiment --seed 9 --samples 200"),
    ("evaluate", "runs/sine --data sine --seed 2 --samples 50"),
]
RECIPES = [
    "argmax-attention.yaml", "bptt-sigmoid-worked.yaml", "vanishing-exploding.yaml",
    "compare-selectors-learn.yaml --set params.steps=40",
    "dyck-lm.yaml --set steps[0].params.epochs=1",
    "echo-tagging.yaml --set params.epochs=1",
    "sentiment-classify.yaml --set params.epochs=1 --set params.samples=300",
    "cells-on-sentiment.yaml --set params.epochs=1 --set params.samples=200 --set sweep.seeds=[0]",
]

TIMING = re.compile(r'"(\w*_us|seconds|tokens_per_s|cost_spread_us|select_spread_us)": '
                    r'(-?[0-9.e+-]+|\[[^\]]*\]|null)')
TIMING_CSV = ("_us", "seconds", "tokens_per_s")


def commands() -> list[tuple[str, list[str], list[str]]]:
    """(label, argv, formats) in the order they must run (training before using runs)."""
    out = []
    for i, a in enumerate(ATTEND):
        out.append((f"attend-{i}", ["attend", *_split(a)], ["json", "csv"]))
    for i, a in enumerate(COMPARE):
        out.append((f"compare-{i}", ["compare-selectors", *_split(a)], ["json", "csv"]))
    for i, a in enumerate(BPTT):
        out.append((f"bptt-{i}", ["bptt", *_split(a)], ["json", "csv"]))
    for i, a in enumerate(TRAIN):
        out.append((f"train-{i}", ["train-rnn", *_split(a)], ["jsonl"]))
    for i, (cmd, a) in enumerate(USE):
        out.append((f"{cmd}-{i}", [cmd, *_split(a)], ["json", "jsonl", "csv"]))
    for i, a in enumerate(RECIPES):
        path, *rest = _split(a)
        out.append((f"run-{i}", ["run", str(ROOT / "recipes" / path), *rest,
                                 "--out", f"recipe-{i}"], ["json", "csv"]))
    return out


def _split(text: str) -> list[str]:
    import shlex

    return shlex.split(text)


def mask(text: str, where: str) -> str:
    text = text.replace(where, "<tmp>")
    text = TIMING.sub(lambda m: f'"{m.group(1)}": "<time>"', text)
    return re.sub(r"\d{8}-\d{6}", "<stamp>", text)


# Numbers derived from timings (ratios of two times, times in --explain's prose): masked in
# both records when they are compared, so that records made before this mask still compare.
DERIVED = [(re.compile(r'"ratio_to_argmax": [0-9.e+-]+'), '"ratio_to_argmax": "<time>"'),
           (re.compile(r"[0-9.]+ µs"), "<t> µs"),
           (re.compile(r"(softmax/argmax = )[0-9.]+"), r"\1<t>"),
           (re.compile(r"argmax is (cheaper|dearer|not cheaper)"), "argmax is <cmp>")]


def normalise(text: str) -> str:
    for pattern, replacement in DERIVED:
        text = pattern.sub(replacement, text)
    return text


def mask_csv(text: str) -> str:
    lines = text.splitlines()
    if not lines:
        return text
    header = lines[0].split(",")
    timed = [i for i, h in enumerate(header) if any(h.endswith(t) or t in h for t in TIMING_CSV)]
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        for i in timed:
            if i < len(cells):
                cells[i] = "<time>"
        out.append(",".join(cells))
    return "\n".join(out) + "\n"


def run_all(seqtool: list[str]) -> dict[str, str]:
    work = Path(tempfile.mkdtemp(prefix="seqtool-behaviour-"))
    (work / "problem.yaml").write_text(PROBLEM_YAML)
    results = {}
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120")
    for label, argv, formats in commands():
        for fmt in formats:
            args = list(argv)
            if label.startswith("run-") and fmt != formats[0]:
                args = args[:-1] + [args[-1] + "-" + fmt]  # a fresh --out: nothing skipped
            if label.startswith("train-") and fmt != formats[0]:
                continue
            proc = subprocess.run([*seqtool, *args, "--format", fmt], cwd=work, env=env,
                                  capture_output=True, text=True, check=False)
            body = proc.stdout
            body = mask_csv(body) if fmt == "csv" else body
            results[f"{label}.{fmt}"] = (f"$ seqtool {' '.join(args)} --format {fmt}\n"
                                         f"exit {proc.returncode}\n"
                                         + mask(body, str(work)) + "--- stderr\n"
                                         + mask(proc.stderr, str(work)))
    shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("record", "compare"):
        print(__doc__)
        return 2
    mode, folder = sys.argv[1], Path(sys.argv[2])
    results = run_all([sys.executable, "-m", "seqtool"])
    if mode == "record":
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in results.items():
            (folder / name).write_text(text)
        print(f"recorded {len(results)} outputs in {folder}")
        return 0
    differ = 0
    for name, text in results.items():
        before = (folder / name).read_text() if (folder / name).exists() else ""
        # stderr may change wording (progress, notes): compare stdout and exit code only
        now_out = normalise(text.split("--- stderr\n")[0])
        then_out = normalise(before.split("--- stderr\n")[0])
        if now_out != then_out:
            differ += 1
            diff = difflib.unified_diff(then_out.splitlines(), now_out.splitlines(),
                                        "before", "after", lineterm="", n=1)
            print(f"DIFFERS {name}:\n" + "\n".join(list(diff)[:12]))
    print(f"{len(results) - differ} of {len(results)} outputs identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
