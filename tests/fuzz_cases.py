"""What the fuzz of #14 throws at seqtool: whole command lines of every command, with their
stdin, their files, forged run directories and random recipes, as hypothesis strategies.

A :class:`Case` is drawn by :func:`cases`; :func:`prepare` lays it out in a folder of its
own (its files written, a trained run copied and forged) and gives the arguments to run.
``tests/cli/test_fuzz.py`` runs a few dozen in-process in the suite;
``benchmarks/bench_fuzz.py`` runs thousands, each in its own process, and measures them.
Whatever comes in, seqtool must answer with exit 0 or 1 (a run that failed, said in a
line), or exit 2 and one line naming the flag, key or file; never a traceback, never an
"internal error", never a raw NumPy warning.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hypothesis import strategies as st

# -- values ---------------------------------------------------------------------------------

# what a user could type into a number: numbers of every size, signs, separators, junk
NUMBERISH = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.integers(min_value=-3, max_value=40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789-+.,;e ", min_size=0, max_size=12),
    st.sampled_from(["", "-", "nan", "inf", "1e309", "0x10", "1_000", "@", "@/nonexistent",
                     "[1,2]", "[[1],[2,3]]", "{}", "3,,-1", ";", "0", "1e-320", "-0"]),
)
NAMEISH = st.one_of(
    st.sampled_from(["rnn", "gru", "lstm", "bow", "softmax", "argmax", "sparsemax", "entmax",
                     "topk", "gumbel", "st-argmax", "float32", "float64", "float99", "adam",
                     "sgd", "classify", "tag", "lm", "regress", "word", "char", "last", "max",
                     "mean", "relu", "tanh", "mse", "cross_entropy", "all", "lstm,gru", ",",
                     "seq2seq", "reverse", "dates", "addition", "reinforce", "general",
                     "additive",
                     "", "LSTM", "../x", "/dev/null"]),
    st.text(max_size=12),
)
# any JSON value, small
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats()
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=8)
# a value in a recipe: the interesting ones (small enough to run, or refused at once) and junk
RECIPE_VALUE = st.one_of(
    st.sampled_from([0, 1, 2, 3, -1, 10**9, 10**30, 0.5, 1e308, float("nan"), float("inf"),
                     "", "x", True, False, None, [3, -1], [[1, 2], [3, 4]], "3,-1", "softmax",
                     "lstm", "float64", {"a": 1}]),
    JSONISH,
)

# -- command lines ----------------------------------------------------------------------------

# flag -> what to draw for it, per command; {runs} is the trained runs' folder, {dir} the case's
FLAGS: dict[str, dict[str, Any]] = {
    "attend": {f: NUMBERISH for f in ("--query", "--keys", "--values", "--scale",
                                      "--temperature", "--alpha", "--k", "--seed",
                                      "--precision")} | {"--selector": NAMEISH},
    "compare-selectors": {f: NUMBERISH for f in ("--query", "--keys", "--repeats", "--sizes",
                                                 "--dim", "--pairs", "--vocab", "--lr",
                                                 "--alpha", "--k", "--temperature")}
    | {"--selectors": NAMEISH},
    "bptt": {f: NUMBERISH for f in ("--steps", "--input-size", "--hidden", "--output-size",
                                    "--seed", "--radius", "--truncate", "--jacobian",
                                    "--forget-bias")}
    | {f: NAMEISH for f in ("--cell", "--activation", "--loss", "--target-at")},
    "train-rnn": {f: NUMBERISH for f in ("--hidden", "--layers", "--embedding-dim",
                                         "--batch-size", "--lr", "--dropout",
                                         "--weight-decay", "--clip-norm", "--seed",
                                         "--samples", "--seq-len", "--val-fraction",
                                         "--patience", "--delay", "--max-len", "--epochs")}
    | {f: NAMEISH for f in ("--cell", "--task", "--tokenizer", "--pool", "--nonlinearity",
                            "--dtype", "--optimizer", "--data")},
    "sample": {f: NUMBERISH for f in ("--length", "--temperature", "--seed")}
    | {"--prime": st.text(max_size=20)},
    "evaluate": {f: NUMBERISH for f in ("--seed", "--samples")} | {"--data": NAMEISH},
    "predict": {"--text": st.text(max_size=40)},
}
# the rest of each command line: small, fast, and written inside the case's folder
BASE = {
    "attend": ["-q", "3,-1"],
    "compare-selectors": ["-q", "3,-1", "--repeats", "1"],
    "bptt": ["--steps", "3"],
    "train-rnn": ["--data", "parity", "--samples", "32", "--hidden", "4", "--steps", "1",
                  "--out", "{dir}/run"],
    "sample": ["{runs}/lm", "--prime", "(", "--length", "20"],
    "evaluate": ["{runs}/cls", "--data", "parity", "--samples", "16"],
    "predict": ["{runs}/cls", "-t", "0101"],
}
# flags that only mean something beside others
WITH = {"--sizes": ["--cost", "--sizes", "16"], "--dim": ["--cost", "--sizes", "16"],
        "--pairs": ["--learn", "--steps", "3"], "--vocab": ["--learn", "--steps", "3"],
        "--lr": ["--learn", "--steps", "3"]}


@dataclass
class Case:
    """One thing thrown at seqtool: the arguments after ``seqtool`` ({dir}: the case's own
    folder; {runs}: the trained runs), its stdin, files to write into {dir} first, and a
    forgery: (run, file, which field, new value or DELETE) applied to a copy of a trained run
    that the arguments name as {dir}/<run>."""

    args: list[str]
    stdin: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    forge: tuple[str, str, int | str, Any] | None = None
    kind: str = ""

    def __str__(self) -> str:  # the reproducer, as a shell line would read
        shown = " ".join(json.dumps(a) if (not a or " " in a) else a for a in self.args)
        return (f"[{self.kind}] seqtool {shown}"
                + (f" <<< {self.stdin[:60]!r}" if self.stdin else "")
                + "".join(f" [{name}: {content[:80]!r}]" for name, content in self.files.items())
                + (f" [forged: {self.forge!r:.120}]" if self.forge else ""))


DELETE = "<delete>"


@st.composite
def flag_cases(draw) -> Case:
    command = draw(st.sampled_from(sorted(FLAGS)))
    flag = draw(st.sampled_from(sorted(FLAGS[command])))
    value = draw(FLAGS[command][flag])
    args = [command, *BASE[command], *WITH.get(flag, []), flag, value, "-f", "json"]
    return Case(args, kind=f"flag {command} {flag}")


@st.composite
def stdin_cases(draw) -> Case:
    text = draw(st.one_of(st.text(max_size=200),
                          st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                          JSONISH.map(json.dumps)))
    args = draw(st.sampled_from([
        ["attend", "-q", "-"], ["attend", "-q", "3,-1", "--input", "-"],
        ["compare-selectors", "--input", "-", "--repeats", "1"], ["bptt", "--problem", "-"],
        ["predict", "{runs}/cls"],
    ]))
    return Case([*args, "-f", "json"], stdin=text, kind=f"stdin {args[0]}")


@st.composite
def file_cases(draw) -> Case:
    """A data, problem or input file of random content under a plausible name."""
    suffix = draw(st.sampled_from([".tsv", ".csv", ".jsonl", ".txt", ".json", ".yaml",
                                   ".npy", ""]))
    content = draw(st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.lists(st.lists(st.text(alphabet="ab01 \t,\"'\\", max_size=6), min_size=1,
                          max_size=3), max_size=6)
        .map(lambda rows: "\n".join("\t".join(r) for r in rows).encode()),
        JSONISH.map(lambda v: json.dumps(v).encode()),
    ))
    if draw(st.booleans()):  # a header a reader will recognise, with junk under it
        content = draw(st.sampled_from([b"text\tlabel\n", b"text,label\n", b"source\ttarget\n",
                                        b'{"text": "a", "label": "b"}\n'])) + content
    name = "data" + suffix
    args = draw(st.sampled_from([
        ["train-rnn", "--data", "{dir}/" + name, "--steps", "1", "--hidden", "4",
         "--out", "{dir}/run"],
        ["evaluate", "{runs}/cls", "--data", "{dir}/" + name],
        ["attend", "--input", "{dir}/" + name], ["bptt", "--problem", "{dir}/" + name],
        ["compare-selectors", "--input", "{dir}/" + name, "--repeats", "1"],
        ["attend", "-q", "@{dir}/" + name], ["run", "{dir}/" + name, "--out", "{dir}/runs"],
    ]))
    return Case([*args, "-f", "json"], files={name: content}, kind=f"file {args[0]} {suffix}")


@st.composite
def forged_cases(draw) -> Case:
    """A copy of a trained run with one field of its model.json or last.json replaced (or
    deleted), used by predict, evaluate or --resume."""
    target = draw(st.sampled_from(["model", "last"]))
    where = draw(st.integers(min_value=0, max_value=10**6))
    value = draw(st.one_of(st.just(DELETE), JSONISH))
    if target == "model":
        args = draw(st.sampled_from([["predict", "{dir}/cls", "-t", "0 1 1 0"],
                                     ["evaluate", "{dir}/cls", "--data", "parity"]]))
        forge = ("cls", "model.json", where, value)
    else:  # --steps 1: a run that already took more steps resumes to nothing; bounded
        args = ["train-rnn", "--resume", "{dir}/two", "--steps", "1"]
        forge = ("two", "last.json", where, value)
    return Case([*args, "-f", "json"], forge=forge, kind=f"forged {target}.json {args[0]}")


RECIPE_KEYS = ["query", "keys", "values", "selector", "selectors", "temperature", "alpha",
               "k", "scale", "seed", "steps", "hidden", "cell", "input_size", "output_size",
               "radius", "truncate", "check", "cost", "sizes", "repeats", "learn", "dim",
               "explain", "activation", "loss", "colour", "x", "W_hh"]


@st.composite
def recipe_cases(draw) -> Case:
    """A random recipe: a plausible shape with random keys and values, or random YAML."""
    command = draw(st.one_of(st.sampled_from(["attend", "bptt", "compare-selectors"]),
                             st.sampled_from(["nope", 5, None, ["attend"]])))
    plausible = st.sampled_from([1, 2, 3, 0.5, [3, -1], "softmax", "lstm", True])
    params = draw(st.dictionaries(st.sampled_from(RECIPE_KEYS), plausible | RECIPE_VALUE,
                                  max_size=4))
    recipe: dict[str, Any] = {"name": draw(st.one_of(st.just("fuzz"), st.just("f"), NAMEISH)),
                              "command": command, "params": params}
    if draw(st.booleans()):
        key = draw(st.sampled_from(RECIPE_KEYS))
        sweep = {draw(st.sampled_from(["grid", "zip", "seeds", "colour"])):
                 draw(st.dictionaries(st.sampled_from([key, f"params.{key}", "seed"]),
                                      st.lists(plausible | RECIPE_VALUE, max_size=3),
                                      max_size=2) | RECIPE_VALUE)}
        if draw(st.booleans()):
            sweep["seeds"] = draw(st.lists(plausible | RECIPE_VALUE, max_size=3) | RECIPE_VALUE)
        recipe["sweep"] = sweep
    if draw(st.booleans()):
        recipe[draw(st.sampled_from(["steps", "extends", "summary", "colour"]))] = \
            draw(RECIPE_VALUE)
    text = json.dumps(recipe, allow_nan=True)  # YAML reads JSON (NaN and Infinity as text)
    if draw(st.integers(0, 4)) == 0:  # or YAML no reader planned for
        text = draw(st.text(alphabet="abc:-[]{}&*!|>'\"#\n ", min_size=1, max_size=120))
    args = ["run", "{dir}/recipe.yaml", "--out", "{dir}/runs", "-f", "json"]
    if draw(st.booleans()):
        args.append("--dry-run")
    return Case(args, files={"recipe.yaml": text.encode()}, kind="recipe")


KINDS = {"flag": flag_cases, "stdin": stdin_cases, "file": file_cases,
         "forged run directory": forged_cases, "recipe": recipe_cases}


# the reproducers of sizes that cannot fit, work that would not end, bombs and lying
# files: fixed cases, run first by the benchmark, whose refusals must be quick and small
BILLION_LAUGHS = "".join(
    [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)]
).replace("*l0", '"lol"')
LYING_NPY = (b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': "
             b"(1000000, 1000000), }".ljust(117) + b"\n" + b"\x00" * 64)
REPRODUCERS = [
    Case(["bptt", "--input-size", "1000000000"], kind="size bptt"),
    Case(["bptt", "--hidden", "100000", "--cell", "lstm"], kind="size bptt"),
    # found by the fuzz: the outputs (T × O) were not in the estimate, and a report of
    # 10⁸ numbers was let through (an --output-size of 10⁸ took 24 GB and was killed)
    Case(["bptt", "--output-size", "100000000"], kind="size bptt"),
    Case(["bptt", "--input-size", "10000000"], kind="size bptt"),
    Case(["compare-selectors", "-q", "3,-1", "--cost", "--sizes", "16", "--dim",
          "1000000000"], kind="size compare-selectors"),
    Case(["train-rnn", "--data", "parity", "--hidden", "10000000", "--out", "{dir}/r"],
         kind="size train-rnn"),
    Case(["train-rnn", "--data", "parity", "--layers", "100000", "--out", "{dir}/r"],
         kind="size train-rnn"),
    Case(["train-rnn", "--data", "parity", "--embedding-dim", "100000000", "--out", "{dir}/r"],
         kind="size train-rnn"),
    Case(["predict", "{dir}/cls", "-t", "0 1"], forge=("cls", "model.json", "spec.hidden", 10**9),
         kind="size predict"),
    Case(["predict", "{runs}/cls"], stdin="0 1 " * 3_000_000, kind="size predict"),
    Case(["bptt", "--steps", "1000000", "--cell", "lstm"], kind="endless bptt"),
    Case(["bptt", "--steps", "1000", "--cell", "lstm", "--hidden", "64"], kind="endless bptt"),
    Case(["bptt", "--steps", "1000", "--cell", "lstm", "--hidden", "30", "--check"],
         kind="endless bptt"),
    Case(["compare-selectors", "-q", "3,-1", "--repeats", "1000000000000"],
         kind="endless compare-selectors"),
    Case(["compare-selectors", "-q", "3,-1", "--learn", "--steps", "1000000000000"],
         kind="endless compare-selectors"),
    Case(["compare-selectors", "-q", "3,-1", "--learn", "--steps", "3", "--vocab", "1000000"],
         kind="endless compare-selectors"),
    Case(["sample", "{runs}/lm", "--length", "1000000000000"], kind="endless sample"),
    Case(["run", "{dir}/bomb.yaml"], files={"bomb.yaml": BILLION_LAUGHS.encode()},
         kind="bomb run"),
    Case(["compare-selectors", "--input", "{dir}/bomb.yaml"],
         files={"bomb.yaml": BILLION_LAUGHS.encode()}, kind="bomb compare-selectors"),
    Case(["attend", "-q", "-"], stdin="[" * 200_000, kind="bomb attend"),
    Case(["attend", "-q", "@{dir}/big.npy"], files={"big.npy": LYING_NPY}, kind="lying file"),
]


# -- running a case -------------------------------------------------------------------------

TRAINED = {  # the runs the cases use, trained once
    "cls": ["train-rnn", "--data", "parity", "--samples", "64", "--epochs", "1", "--hidden",
            "8", "--seq-len", "6"],
    "two": ["train-rnn", "--data", "parity", "--samples", "64", "--epochs", "2", "--hidden",
            "8", "--seq-len", "6"],
    "lm": ["train-rnn", "--data", "dyck", "--samples", "64", "--epochs", "1", "--hidden", "8"],
}


def train_runs(runs: Path, invoke: Callable[[list[str]], int]) -> None:
    """Train the runs of TRAINED into ``runs`` with ``invoke(args) -> exit code``."""
    for name, args in TRAINED.items():
        if not (runs / name / "model.json").exists():
            code = invoke([*args, "--out", str(runs / name), "-f", "json"])
            assert code == 0, f"training {name} failed"


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (the value itself excluded), in a fixed order."""
    found = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return found
    for key, inner in items:
        found.append(prefix + (key,))
        found.extend(_paths(inner, prefix + (key,)))
    return found


def forge(path: Path, where: int | str, value: Any) -> None:
    """Replace (or delete) the field number ``where`` (modulo their count), or the field
    at the dotted path ``where``, of a JSON file."""
    meta = json.loads(path.read_text())
    paths = _paths(meta)
    chosen = tuple(where.split(".")) if isinstance(where, str) else paths[where % len(paths)]
    *parents, last = chosen
    target = meta
    for key in parents:
        target = target[key]
    if value == DELETE:
        del target[last]
    else:
        target[last] = value
    path.write_text(json.dumps(meta, allow_nan=True))


def prepare(case: Case, folder: Path, runs: Path) -> tuple[list[str], str | None]:
    """Lay ``case`` out in ``folder`` (an empty folder of its own): its files, its forged
    run. Returns the arguments with the placeholders filled, and the stdin."""
    for name, content in case.files.items():
        (folder / name).write_bytes(content)
    if case.forge is not None:
        run, file, where, value = case.forge
        shutil.copytree(runs / run, folder / run)
        forge(folder / run / file, where, value)
    args = [a.replace("{dir}", str(folder)).replace("{runs}", str(runs)) for a in case.args]
    return args, case.stdin


COMPILE_NOTICES = ("seqtool: compiling the ", "seqtool: compiled the ")


def problems(code: int, stderr: str) -> list[str]:
    """What is wrong with an answer (nothing, for a clean one)."""
    found = []
    if "Traceback" in stderr:
        found.append("traceback")
    if "internal error" in stderr:
        found.append("internal error")
    if "Warning:" in stderr:
        found.append("raw warning")
    if code not in (0, 1, 2):
        found.append(f"exit {code}")
    lines = [line for line in stderr.strip().splitlines() if not line.startswith(COMPILE_NOTICES)]
    if code == 2 and len(lines) != 1:
        found.append(f"{len(lines)} lines for one error")
    return found
