"""The one output path: every format written from a Report, and a new format in one place."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import numpy as np
import pytest

from seqtool.core.attention import EXAMPLE_KEYS
from seqtool.core.report import Report
from seqtool.io.output import (
    Writer, formats_for, register_writer, unregister_writer, write_report,
)


@dataclass
class Toy(Report):
    values: list[float]

    def to_dict(self):
        return {"values": self.values, "total": sum(self.values)}

    def rows(self):
        return [{"i": i, "value": v} for i, v in enumerate(self.values)]


def written(report, fmt, explanation=None) -> str:
    buf = io.StringIO()
    write_report(report, fmt, explanation, buf)
    return buf.getvalue()


def test_json_jsonl_and_csv_come_from_to_dict_and_rows():
    report = Toy([0.1, 2.0, 1 / 3])
    assert json.loads(written(report, "json")) == report.to_dict()
    assert json.loads(written(report, "json", ["a line"]))["explanation"] == ["a line"]
    assert [json.loads(line) for line in written(report, "jsonl").splitlines()] == [
        report.to_dict()]
    rows = list(csv.reader(io.StringIO(written(report, "csv"))))
    assert rows[0] == ["i", "value"]
    assert [float(r[1]) for r in rows[1:]] == report.values  # full precision (repr)


def test_an_empty_table_keeps_its_header():
    class Empty(Toy):
        def columns(self):
            return ["i", "value"]

    assert written(Empty([]), "csv") == "i,value\n"


def test_a_new_format_is_one_writer_and_every_command_offers_it(cli):
    def tsv(report, stream, explanation):
        rows = report.rows()
        stream.write("\t".join(rows[0]) + "\n")
        for row in rows:
            stream.write("\t".join(str(v) for v in row.values()) + "\n")

    register_writer(Writer("tsv", tsv))
    try:
        assert "tsv" in formats_for(streams=False) and "tsv" in formats_for(streams=True)
        assert written(Toy([1.5, -2.0]), "tsv").splitlines() == ["i\tvalue", "0\t1.5",
                                                                  "1\t-2.0"]
        result = cli("attend", "-q", "3,-1", "-s", "argmax", "-f", "tsv")  # no other change
        assert result.exit_code == 0, result.stderr
        lines = [line.split("\t") for line in result.stdout.splitlines()]
        assert lines[0] == ["query", "key", "score", "weight"]
        scores = [float(row[2]) for row in lines[1:]]
        expected = EXAMPLE_KEYS @ np.array([3.0, -1.0])  # q·k_i of the worked example
        assert scores == expected.tolist()
        weights = [float(row[3]) for row in lines[1:]]
        assert weights == np.eye(len(expected))[np.argmax(expected)].tolist()
    finally:
        unregister_writer("tsv")
    assert "tsv" not in formats_for(streams=True)


@pytest.mark.parametrize("fmt", ["yaml", "jsonl"])
def test_a_format_a_command_does_not_offer_is_refused_before_any_work(cli, fmt):
    result = cli("attend", "-q", "3,-1", "--format", fmt)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"seqtool: error: --format is '{fmt}'; choose one of "
                                     "table, json, csv")
