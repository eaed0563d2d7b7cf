"""The homework notebook, examples/homework.ipynb, runs top to bottom and still prints the
numbers it was saved with.

The notebook is committed executed, with its outputs. The test runs a copy of it with nbclient
in a fresh kernel (working directory: the repository root), fails on any cell that raises, and
compares each code cell's outputs with the saved ones:

* the text (stdout, and the ``text/plain`` of results and displays), with every number
  replaced by ``#`` and runs of whitespace collapsed, must be the same;
* then the numbers, in order, must agree to a relative 1e-6 or an absolute 1e-9;
* pictures and HTML (``image/*``, ``text/html``) are compared only by kind: the same
  outputs with the same MIME types must appear.

stderr is not compared, because a first run on a machine may report numba compiling there.
A failure names the code cell (its index among the notebook's cells and its first line) and
the first difference.

The kernel is the interpreter that runs the test (``sys.executable -m ipykernel_launcher``),
whatever ``python3`` kernelspec is installed, so the notebook sees the seqtool under test.

After an intended change (to the notebook, or to numbers seqtool computes), run it again and
save it with its outputs:

    python tests/test_notebook.py --update

It runs from the repository root whatever the current directory is, writes the notebook in
place (without timings in its metadata), and prints the time it took. Check the diff of
examples/homework.ipynb before committing it. To change the notebook's text or code, edit the
notebook (in Jupyter, or as JSON), then run ``--update``.
"""

from __future__ import annotations

import math
import re
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets import default

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "homework.ipynb"
CELL_TIMEOUT = 600  # seconds per cell: a cold numba cache compiles in the first training cell
REL, ABS = 1e-6, 1e-9
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
PICTURES = ("image/", "text/html")  # compared by kind only


class ThisPythonSpecs(KernelSpecManager):
    """Every kernel name is this interpreter's ipykernel."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                "{connection_file}"],
                          display_name="Python 3 (ipykernel)", language="python")


class ThisPythonKernel(AsyncKernelManager):
    @default("kernel_spec_manager")
    def _kernel_spec_manager_default(self) -> KernelSpecManager:
        return ThisPythonSpecs(data_dir=self.data_dir)


def execute(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run ``nb`` in place in a fresh kernel of this interpreter, from the repository root;
    a cell that raises stops it with nbclient's CellExecutionError."""
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            kernel_manager_class=ThisPythonKernel,
                            resources={"metadata": {"path": str(ROOT)}},
                            record_timing=False, allow_errors=False)
    client.execute()
    return nb


# ---------------------------------------------------------------------------------------
# What a cell showed


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def shown(cell) -> tuple[str, list[str]]:
    """(the cell's text, the kinds of its outputs in order). The text is its stdout and the
    ``text/plain`` of its results and displays, in order; kinds are ``stdout`` (once per
    run of stdout), ``error``, or the output type with its MIME types."""
    texts, kinds = [], []
    for out in cell.get("outputs", []):
        kind = out["output_type"]
        if kind == "stream":
            if out.get("name") != "stdout":
                continue
            texts.append(_text(out["text"]))
            if not kinds or kinds[-1] != "stdout":
                kinds.append("stdout")
        elif kind == "error":
            texts.append(f"{out['ename']}: {out['evalue']}")
            kinds.append("error")
        else:
            data = out.get("data", {})
            kinds.append(f"{kind}:{','.join(sorted(data))}")
            if "text/plain" in data:
                texts.append(_text(data["text/plain"]) + "\n")
    return "".join(texts), kinds


def _skeleton(text: str) -> str:
    return " ".join(NUMBER.sub("#", text).split())


def _numbers(text: str) -> list[float]:
    return [float(m) for m in NUMBER.findall(text)]


def _line_with(text: str, index: int) -> str:
    """The line of ``text`` that holds its ``index``-th number."""
    match = list(NUMBER.finditer(text))[index]
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start:end if end >= 0 else len(text)].strip()


def difference(saved: str, now: str) -> str | None:
    """The first difference between two cells' texts, or None when they agree."""
    if _skeleton(saved) != _skeleton(now):
        a, b = saved.splitlines(), now.splitlines()
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else "<no line>"
            y = b[i] if i < len(b) else "<no line>"
            if _skeleton(x) != _skeleton(y):
                return f"text differs at output line {i + 1}:\n  saved: {x!r}\n  now:   {y!r}"
        return "text differs (in its whitespace or line breaks only, after numbers)"
    for i, (x, y) in enumerate(zip(_numbers(saved), _numbers(now))):
        if not math.isclose(x, y, rel_tol=REL, abs_tol=ABS):
            return (f"number {i + 1} is {y!r}, saved {x!r} (rel {REL:g}, abs {ABS:g}):\n"
                    f"  saved: {_line_with(saved, i)!r}\n  now:   {_line_with(now, i)!r}")
    return None


def _first_line(cell) -> str:
    return _text(cell["source"]).strip().splitlines()[0] if _text(cell["source"]).strip() else ""


def compare(saved_nb, run_nb) -> list[str]:
    """Every code cell whose outputs differ, with its first difference."""
    problems = []
    for index, (old, new) in enumerate(zip(saved_nb.cells, run_nb.cells)):
        if old.cell_type != "code":
            continue
        where = f"cell {index} ({_first_line(old)!r})"
        old_text, old_kinds = shown(old)
        new_text, new_kinds = shown(new)
        if "error" in new_kinds:
            problems.append(f"{where} raised: {new_text}")
        elif old_kinds != new_kinds:
            problems.append(f"{where} shows {new_kinds}, saved {old_kinds}")
        elif (diff := difference(old_text, new_text)) is not None:
            problems.append(f"{where}: {diff}")
    return problems


# ---------------------------------------------------------------------------------------
# Tests


def test_saved_notebook_is_valid_and_executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cells"
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"execution counts {counts}: save it executed top to bottom in one kernel "
        "(python tests/test_notebook.py --update)")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs, f"cell {index} ({_first_line(cell)!r}) has no saved output"
        for out in cell.outputs:
            assert out["output_type"] != "error", f"cell {index} was saved with an error"
            assert not (out["output_type"] == "stream" and out.get("name") == "stderr"), (
                f"cell {index} was saved with stderr output: {_text(out['text'])[:200]!r}")
        assert "execution" not in cell.metadata, f"cell {index} has timings in its metadata"


def test_notebook_runs_and_prints_the_saved_numbers():
    saved = nbformat.read(NOTEBOOK, as_version=4)
    run = execute(nbformat.read(NOTEBOOK, as_version=4))
    problems = compare(saved, run)
    assert not problems, (f"{len(problems)} code cell(s) of {NOTEBOOK.name} differ from the "
                          "saved outputs (after an intended change: python "
                          "tests/test_notebook.py --update)\n" + "\n".join(problems))


def test_kernel_is_this_interpreter():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, sys\nprint(sys.executable)\nprint(sys.prefix)\nprint(os.getcwd())")])
    out = _text(execute(nb).cells[0].outputs[0]["text"]).splitlines()
    assert out[:2] == [sys.executable, sys.prefix]
    assert Path(out[2]).resolve() == ROOT


def test_comparison_finds_the_first_difference():
    saved = "loss 0.5 at step 3\nweights [1.0, -2.5]\n"
    assert difference(saved, "loss  0.5000001 at step 3\nweights [1.0,  -2.5]\n") is None
    assert difference(saved, "loss 0.5 at step 3\nweights [1.0, 2e-10]\n") is not None
    message = difference(saved, "loss 0.5 at step 3\nweights [1.0, -2.6]\n")
    assert "number 4 is -2.6, saved -2.5" in message and "weights [1.0, -2.6]" in message
    assert "output line 1" in difference(saved, "cost 0.5 at step 3\nweights [1.0, -2.5]\n")
    assert difference("tiny 3e-16\n", "tiny 0e+00\n") is None  # below the absolute tolerance


# ---------------------------------------------------------------------------------------
# Re-execute and save


def update() -> None:
    """Execute the notebook and save it in place with its outputs."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    started = time.perf_counter()
    execute(nb)
    seconds = time.perf_counter() - started
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.validate(nb)
    nbformat.write(nb, NOTEBOOK)
    errors = [f"cell {i}: {_text(out['text'])[:300]!r}" for i, cell in enumerate(nb.cells)
              if cell.cell_type == "code" for out in cell.outputs
              if out["output_type"] == "stream" and out.get("name") == "stderr"]
    print(f"executed and saved {NOTEBOOK.relative_to(ROOT)} in {seconds:.1f} s")
    if errors:
        print("warning: stderr output was saved (the tests refuse it):\n" + "\n".join(errors))


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: python {Path(__file__).name} --update   (execute {NOTEBOOK.name} "
                 "and save it with its outputs)")
    update()
