"""`seqtool predict`, `seqtool sample` and `seqtool evaluate`: using a trained run."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

from seqtool.cli.app import app
from seqtool.cli.options import given, precision_option
from seqtool.cli.output import STREAM_FORMATS, check_format
from seqtool.config import EvaluateConfig, PredictConfig, SampleConfig, help_of


def _format(requested: str | None, piped_default: str) -> str:
    from seqtool.io.output import choose_format

    check_format(requested, STREAM_FORMATS)
    chosen = choose_format(requested)
    return piped_default if requested is None and chosen == "json" else chosen


def _format_option() -> Any:
    return typer.Option(None, "--format", "-f", metavar="table|json|jsonl|csv",
                        help="Default: table on a terminal, jsonl (predict) or json when piped.")


# ---------------------------------------------------------------------------------------
# predict


@app.command("predict", short_help="Label texts. e.g. seqtool predict runs/x --text 'not bad'",
             help="Label texts with a trained classify or tag model: --text (repeatable) or "
             "one text per line on stdin; JSONL out, one object per text.\n\nExamples:\n"
             "  seqtool predict runs/sentiment --text 'fun but far too long'\n"
             "  cat reviews.txt | seqtool predict runs/sentiment | jq .label")
def predict_command(
    run: str = typer.Argument(..., metavar="RUN_DIR", help=help_of(PredictConfig, "run")),
    text: Optional[list[str]] = typer.Option(None, "--text", "-t",
                                             help=help_of(PredictConfig, "text")),
    output_format: Optional[str] = _format_option(),
    precision: int = precision_option(),
) -> None:
    fmt = _format(output_format, "jsonl")
    config = PredictConfig.from_mapping({"run": run, **({"text": text} if text else {})})
    texts = list(config.text) or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    from seqtool.using_runs import predict_texts

    rows = predict_texts(config, texts)
    _write_rows(rows, fmt, precision)


def _write_result(result: Any, fmt: str) -> None:
    """json: the whole result, one key per line; jsonl: one line."""
    from seqtool.io.output import write_json, write_jsonl

    (write_json if fmt == "json" else write_jsonl)(result)


def _write_rows(rows: list[dict[str, Any]], fmt: str, precision: int) -> None:
    from seqtool.io.output import write_csv, write_json, write_jsonl

    if fmt == "jsonl":
        for row in rows:
            write_jsonl(row)
    elif fmt == "json":
        write_json(rows)
    elif fmt == "csv":
        keys = [k for k in rows[0] if k in ("text", "label", "tokens", "tags")]
        write_csv(keys, [[" ".join(r[k]) if isinstance(r[k], list) else r[k] for k in keys]
                         for r in rows])
    else:
        from rich.table import Table

        from seqtool.render.console import make_console
        from seqtool.render.numbers import fmt as fmt_number

        table = Table(header_style="bold")
        if "label" in rows[0]:
            for col in ("text", "label", "p(label)"):
                table.add_column(col)
            for r in rows:
                table.add_row(r["text"], r["label"],
                              fmt_number(r["probabilities"][r["label"]], precision))
        else:
            table.add_column("token/tag")
            for r in rows:
                table.add_row(" ".join(f"{w}/{g}" for w, g in zip(r["tokens"], r["tags"])))
        make_console().print(table)


# ---------------------------------------------------------------------------------------
# sample


@app.command("sample", short_help="Draw from an LM. e.g. seqtool sample runs/x --length 40",
             help="Draw tokens from a trained language model, one at a time: token_{t+1} ~ "
             "softmax(y_t / temperature).\n\nExamples:\n"
             "  seqtool sample runs/dyck --length 40 --temperature 0.8 --seed 3\n"
             "  seqtool sample runs/shakespeare --prime 'ROMEO:' --temperature 0")
def sample_command(
    run: str = typer.Argument(..., metavar="RUN_DIR", help=help_of(SampleConfig, "run")),
    length: Optional[str] = typer.Option(None, "--length", "-n", metavar="N",
                                         help=help_of(SampleConfig, "length")),
    temperature: Optional[str] = typer.Option(None, "--temperature", "-t", metavar="T",
                                              help=help_of(SampleConfig, "temperature")),
    prime: Optional[str] = typer.Option(None, "--prime", "-p", metavar="TEXT",
                                        help=help_of(SampleConfig, "prime")),
    seed: Optional[str] = typer.Option(None, "--seed", metavar="INT",
                                       help=help_of(SampleConfig, "seed")),
    output_format: Optional[str] = _format_option(),
) -> None:
    fmt = _format(output_format, "json")
    config = SampleConfig.from_mapping(given(run=run, length=length, temperature=temperature,
                                             prime=prime, seed=seed))
    from seqtool.using_runs import sample_text

    result = sample_text(config)
    words, logps = result["tokens"], result.pop("logprobs")
    from seqtool.io.output import write_csv

    if fmt in ("json", "jsonl"):
        _write_result(result, fmt)
    elif fmt == "csv":
        write_csv(["position", "token", "logprob"],
                  [[i + 1, w, lp] for i, (w, lp) in enumerate(zip(words, logps))])
    else:
        from seqtool.render.console import make_console

        console = make_console()
        console.print(f"[dim]{result['start']}[/dim]{result['text']}", markup=True,
                      highlight=False)


# ---------------------------------------------------------------------------------------
# evaluate


@app.command("evaluate", short_help="Score a model. e.g. seqtool evaluate runs/x --data t.tsv",
             help="Score a trained model on a data file (the training format) or on a fresh "
             "draw of its built-in set: loss and accuracy, perplexity or mse.\n\nExamples:\n"
             "  seqtool evaluate runs/reviews --data test.tsv\n"
             "  seqtool evaluate runs/parity --data parity --seed 7")
def evaluate_command(
    run: str = typer.Argument(..., metavar="RUN_DIR", help=help_of(EvaluateConfig, "run")),
    data: str = typer.Option(..., "--data", "-d", metavar="FILE|NAME",
                             help=help_of(EvaluateConfig, "data")),
    seed: Optional[str] = typer.Option(None, "--seed", metavar="INT",
                                       help=help_of(EvaluateConfig, "seed")),
    samples: Optional[str] = typer.Option(None, "--samples", metavar="N",
                                          help=help_of(EvaluateConfig, "samples")),
    output_format: Optional[str] = _format_option(),
    precision: int = precision_option(),
) -> None:
    fmt = _format(output_format, "json")
    config = EvaluateConfig.from_mapping(given(run=run, data=data, seed=seed, samples=samples))
    from seqtool.using_runs import evaluate_run

    result = evaluate_run(config)
    from seqtool.io.output import write_csv

    if fmt in ("json", "jsonl"):
        _write_result(result, fmt)
    elif fmt == "csv":
        write_csv(list(result), [list(result.values())])
    else:
        from seqtool.render.console import make_console
        from seqtool.render.numbers import fmt as fmt_number

        console = make_console()
        for key, value in result.items():
            shown = fmt_number(value, precision) if isinstance(value, float) else value
            console.print(f"[bold]{key}[/bold] {shown}")
