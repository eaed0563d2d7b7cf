"""The Python API (seqtool.api): the same numbers and the same errors as the CLI, its
doctests, a light `import seqtool`, and the reports' notebook view."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys

import numpy as np
import pytest

import seqtool
import seqtool.api
from seqtool.core.errors import InputError

POSITIONAL = ("run", "recipe")  # the commands' positional arguments
TIMING = ("cost_", "second", "per_s", "time", "elapsed")


def _json(report):
    """The report as --format json prints it (through JSON: tuples as lists, NaN as is)."""
    return json.loads(json.dumps(report.to_json()))


def _untimed(value):
    """``value`` without the measurements of time (which differ run to run)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items()
                if not any(word in k for word in TIMING)}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _cli_message(result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("seqtool: error: "), line
    return line[len("seqtool: error: "):]


def _api_message(call) -> str:
    """The InputError's message as the CLI prints it (the flag, then the message)."""
    with pytest.raises(InputError) as info:
        call()
    err = info.value
    if err.key is None:
        return err.message
    if err.key in POSITIONAL:  # an argument is named as it is, a flag with its dashes
        return f"{err.key} {err.message}"
    return f"--{err.key.replace('_', '-')} {err.message}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small parity classifier trained through the API, and its report."""
    out = tmp_path_factory.mktemp("api") / "r"
    report = seqtool.train(data="parity", samples=100, hidden=8, epochs=1, out=str(out))
    return out, report


def test_import_seqtool_is_light():
    code = ("import seqtool, sys; print('numba' in sys.modules, 'matplotlib' in sys.modules, "
            "'pydantic' in sys.modules, 'numpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "False", "False", "False"]


def test_names_are_exposed_lazily():
    assert seqtool.attend is seqtool.api.attend
    assert seqtool.InputError is InputError
    assert {"attend", "train", "load", "Model"} <= set(dir(seqtool))
    assert set(seqtool._API) == set(seqtool.api.__all__)  # every API name reachable
    with pytest.raises(AttributeError):
        seqtool.no_such_name  # noqa: B018


def test_doctests_pass():
    result = doctest.testmod(seqtool.api, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 10
    assert result.failed == 0


def test_every_public_function_has_a_numpydoc_docstring():
    for name in seqtool.api.__all__:
        obj = getattr(seqtool.api, name)
        members = [obj] if name != "Model" else [obj.predict, obj.sample, obj.evaluate,
                                                 obj.encode, obj.to_torch, obj.export]
        for member in members:
            doc = member.__doc__ or ""
            if name != "Model":
                for section in ("Parameters", "Returns", "Examples"):
                    assert f"{section}\n    ---" in doc, (name, section)
            assert ">>> " in doc, name


def test_attend_worked_example():
    report = seqtool.attend(query="3,-1", selector="argmax")
    assert report.outputs.tolist() == [[6.0, 1.0, 2.0]]


@pytest.mark.parametrize("args, params", [
    (["-q", "3,-1", "-s", "argmax"], {"query": "3,-1", "selector": "argmax"}),
    (["-q", "3,-1;1,2", "-k", "1,5;1,0;1,3", "-s", "sparsemax", "--grad"],
     {"query": [[3, -1], [1, 2]], "keys": np.array([[1, 5], [1, 0], [1, 3]]),
      "selector": "sparsemax", "grad": True}),
    (["-q", "0.5,2", "-t", "0.7", "--scale", "sqrt", "--upstream", "1,0,2"],
     {"query": (0.5, 2), "temperature": 0.7, "scale": "sqrt", "upstream": [1, 0, 2]}),
    (["-q", "3,-1", "-s", "gumbel", "--seed", "4", "--hard"],
     {"query": np.array([3.0, -1.0]), "selector": "gumbel", "seed": np.int64(4),
      "hard": True}),
])
def test_attend_equals_the_cli(cli, args, params):
    result = cli("attend", *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert _json(seqtool.attend(**params)) == result.json()


def test_compare_selectors_equals_the_cli(cli):
    result = cli("compare-selectors", "-q", "3,-1", "-s", "softmax,argmax,entmax",
                 "--repeats", "1", "-f", "json")
    assert result.exit_code == 0, result.stderr
    report = seqtool.compare_selectors(query=[3, -1], selectors=["softmax", "argmax", "entmax"],
                                       repeats=1)
    assert _untimed(_json(report)) == _untimed(result.json())


def test_bptt_equals_the_cli(cli):
    result = cli("bptt", "--steps", "6", "--radius", "1.5", "--cell", "gru", "--seed", "2",
                 "-f", "json")
    assert result.exit_code == 0, result.stderr
    report = seqtool.bptt(steps=6, radius=1.5, cell="gru", seed=2)
    assert _untimed(_json(report)) == _untimed(result.json())


def test_bptt_given_problem_as_arrays_equals_the_cli(cli):
    problem = {"W_xh": [[0.5], [-0.3]], "W_hh": [[0.1, 0.2], [-0.4, 0.3]],
               "W_hy": [[1.0, -1.0]], "x": [[1.0], [0.5], [-1.0]], "y": [[0.2], [0.1], [0.0]]}
    result = cli("bptt", "--problem", "-", "--check", "-f", "json",
                 input=json.dumps(problem))
    assert result.exit_code == 0, result.stderr
    report = seqtool.bptt(**{k: np.array(v) for k, v in problem.items()}, check=True)
    assert _untimed(_json(report)) == _untimed(result.json())


def test_train_equals_the_cli(cli, trained, tmp_path):
    _, report = trained
    result = cli("train-rnn", "--data", "parity", "--samples", "100", "--hidden", "8",
                 "--epochs", "1", "--out", str(tmp_path / "cli"), "-f", "json")
    assert result.exit_code == 0, result.stderr
    ours, theirs = _untimed(_json(report)), _untimed(result.json())
    for key in ("out", "config"):
        ours.pop(key), theirs.pop(key)
    assert ours == theirs
    assert report.stop_reason == "completed"


def test_load_predict_equals_the_cli(cli, trained):
    out, _ = trained
    model = seqtool.load(out)
    assert model.spec.task == "classify" and model.spec.hidden == 8
    texts = ["0110", "1", "111000"]
    result = cli("predict", str(out), *[a for t in texts for a in ("--text", t)], "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert _json(model.predict(texts)) == result.json()
    one = cli("predict", str(out), "--text", "0110", "-f", "json")  # a batch of one
    assert _json(model.predict("0110")) == one.json()


def test_load_evaluate_equals_the_cli(cli, trained):
    out, _ = trained
    result = cli("evaluate", str(out), "--data", "parity", "--seed", "3", "--samples", "40",
                 "-f", "json")
    assert result.exit_code == 0, result.stderr
    report = seqtool.load(str(out)).evaluate("parity", seed=3, samples=40)
    assert _untimed(_json(report)) == _untimed(result.json())


def test_run_recipe_equals_the_cli(cli, tmp_path):
    recipe = "recipes/argmax-attention.yaml"
    result = cli("run", recipe, "--dry-run", "--out", str(tmp_path / "dry"), "-f", "json")
    assert result.exit_code == 0, result.stderr
    report = seqtool.run_recipe(recipe, out=str(tmp_path / "dry"), dry_run=True)
    assert _json(report) == result.json()
    result = cli("run", recipe, "--out", str(tmp_path / "cli"), "-f", "json")
    assert result.exit_code == 0, result.stderr
    ours = _untimed(_json(seqtool.run_recipe(recipe, out=str(tmp_path / "api"))))
    theirs = _untimed(result.json())
    assert ours.pop("out") == str(tmp_path / "api") and theirs.pop("out")
    assert ours == theirs and ours["done"] == 2


@pytest.mark.parametrize("args, call", [
    (["attend", "-q", "3,-1", "-s", "argmax", "-t", "2"],
     lambda: seqtool.attend("3,-1", selector="argmax", temperature=2)),
    (["attend", "-q", "3,-1", "-k", "1,2,3"], lambda: seqtool.attend([3, -1], keys=[[1, 2, 3]])),
    (["attend", "-q", "3,,1"], lambda: seqtool.attend("3,,1")),
    (["attend", "-q", "3,-1", "-s", "softmx"], lambda: seqtool.attend("3,-1", selector="softmx")),
    (["compare-selectors", "--vocab", "2"], lambda: seqtool.compare_selectors(vocab=2)),
    (["bptt", "--steps", "0"], lambda: seqtool.bptt(steps=0)),
    (["bptt", "--cell", "gru", "--activation", "relu"],
     lambda: seqtool.bptt(cell="gru", activation="relu")),
    (["train-rnn", "--data", "parity", "--cell", "lstn"],
     lambda: seqtool.train(data="parity", cell="lstn")),
    (["train-rnn", "--data", "parity", "--dropout", "1"],
     lambda: seqtool.train(data="parity", dropout=1)),
    (["evaluate", "no/such/run", "--data", "parity"],
     lambda: seqtool.load("no/such/run")),
])
def test_bad_parameter_is_the_clis_input_error(cli, args, call):
    assert _api_message(call) == _cli_message(cli(*args))


def test_predict_errors_are_the_clis(cli, trained):
    out, _ = trained
    model = seqtool.load(out)
    assert (_api_message(lambda: model.predict(["01"], beam=0))
            == _cli_message(cli("predict", str(out), "--text", "01", "--beam", "0")))
    assert (_api_message(lambda: model.predict(["01"], beam=2))
            == _cli_message(cli("predict", str(out), "--text", "01", "--beam", "2")))


def test_unknown_keyword_is_an_input_error():
    with pytest.raises(InputError, match="'temprature' is not a parameter of attend; did you "
                       "mean 'temperature'"):
        seqtool.api._run("attend", {"temprature": 1})
    # the functions' keywords are typed: a misspelt one is Python's own TypeError
    with pytest.raises(TypeError, match="unexpected keyword argument 'hiden'"):
        seqtool.train(data="parity", hiden=8)


@pytest.mark.parametrize("function, command, extra", [
    ("attend", "attend", set()),
    ("compare_selectors", "compare-selectors", set()),
    ("bptt", "bptt", set()),
    ("train", "train-rnn", {"resume", "explain"}),
])
def test_keywords_are_the_configs_parameters(function, command, extra):
    """Each function takes exactly its command's Config parameters (and the command's
    options): a parameter added to a Config and not to the API fails here."""
    import inspect

    from seqtool.commands.registry import get_command
    from seqtool.config import parameter_names

    config = get_command(command).config
    hidden = {"example"}  # set by the CLI's own flags, not a user parameter
    expected = set(parameter_names(config)) - hidden | extra
    signature = inspect.signature(getattr(seqtool, function))
    assert set(signature.parameters) == expected
    for name, parameter in signature.parameters.items():
        # None (or a switch's False) means "the command's default", as a flag left out
        assert parameter.default in (None, False) or name == "selector", name


def test_repr_html_holds_the_table():
    html = seqtool.attend(query="3,-1", selector="argmax")._repr_html_()
    assert html.startswith("<pre")
    assert "(6, 1, 2)" in html and "argmax" in html
    pytest.importorskip("matplotlib")
    assert "<svg" in html


def test_repr_html_of_a_trained_run_and_a_fallback(trained):
    _, report = trained
    html = report._repr_html_()
    assert "summary" in html and f"{report.best_val['loss']:.4g}" in html

    from seqtool.core.report import Report

    class Unknown(Report):
        def to_dict(self):
            return {"answer": 42}

    assert Unknown()._repr_html_() == '<pre>{\n  &quot;answer&quot;: 42\n}</pre>'


def test_a_failed_run_raises_run_error_with_its_report(monkeypatch):
    import seqtool.commands.bptt as bptt_command

    expected = _json(seqtool.bptt(steps=3))
    monkeypatch.setattr(bptt_command, "failure", lambda report: "the check did not pass")
    with pytest.raises(seqtool.RunError, match="the check did not pass") as info:
        seqtool.bptt(steps=3)
    assert _json(info.value.report) == expected


def test_docs_api_md_is_the_generated_reference():
    from pathlib import Path

    from seqtool.api_reference import reference

    doc = Path(__file__).resolve().parents[1] / "docs" / "api.md"
    text = reference()
    assert doc.read_text(encoding="utf-8") == text, (
        "docs/api.md is stale: run python -m seqtool.api_reference > docs/api.md")
    for name in seqtool.api.__all__:
        assert f"## `seqtool.{name}`" in text
    assert "### `Model.to_torch`" in text and "**Raises**" in text


def test_repr_html_in_a_kernel_sends_nothing_else(monkeypatch):
    """In Jupyter, Rich would send every table it prints as a display output of its own;
    the report's HTML must be the one output."""
    import rich.console
    import rich.jupyter

    shown = []
    monkeypatch.setattr(rich.console, "_is_jupyter", lambda: True)
    monkeypatch.setattr(rich.jupyter, "display", lambda *args: shown.append(args))
    html = seqtool.attend(query="3,-1", selector="argmax")._repr_html_()
    assert "(6, 1, 2)" in html
    assert shown == []


def test_plot_is_the_clis_picture(cli, tmp_path):
    """seqtool.plot(report, path) writes the bytes `--plot` writes (deterministic SVG), and
    returns the figure."""
    out = tmp_path / "api.svg"
    fig = seqtool.plot(seqtool.bptt(steps=4, hidden=3, seed=2), str(out))
    assert fig.axes and out.read_text().startswith("<svg")
    result = cli("bptt", "--steps", "4", "--hidden", "3", "--seed", "2", "--plot",
                 str(tmp_path / "cli.svg"), "-f", "json")
    assert result.exit_code == 0
    assert out.read_bytes() == (tmp_path / "cli.svg").read_bytes()


def test_plot_refusals_are_input_errors(tmp_path, trained):
    out, _ = trained
    predictions = seqtool.load(out).predict(["0110"])
    with pytest.raises(InputError, match="PredictReport: predict draws no picture"):
        seqtool.plot(predictions)
    with pytest.raises(InputError, match="in a folder that does not exist"):
        seqtool.plot(seqtool.attend("3,-1"), str(tmp_path / "no" / "x.png"))
