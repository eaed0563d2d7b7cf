"""seqtool.core.data, task seq2seq: built-in sets against recomputations, the shared
vocabulary, batches and decoder_io against plain Python, files, errors."""

from __future__ import annotations

import datetime
import json
import math
import re
from collections import Counter

import numpy as np
import pytest

from seqtool.core.data import (
    BOS, BOS_ID, BUILTIN_TASKS, EOS, EOS_ID, IGNORE, PAD, PAD_ID, TASKS, UNK, UNK_ID, Dataset,
    DecoderIO, Vocab, builtin, decoder_io, encode_texts, make_batch, prepare, read_data,
    unigram_entropy,
)
from core.test_data import raises  # a one-line InputError about a key, with fragments
from seqtool.core.data.readers import infer_task
from seqtool.core.errors import InputError

SEQ2SEQ = [name for name, task in BUILTIN_TASKS.items() if task == "seq2seq"]
SPECIALS = [PAD, UNK, BOS, EOS]


def text(data: Dataset, ids) -> str:
    """Char-token ids as a string."""
    return "".join(data.vocab.decode(ids))


def pairs(data: Dataset) -> list[tuple[str, str]]:
    """(source, target) strings of a char-token set, the target without BOS/EOS."""
    return [(text(data, x), text(data, y[1:-1])) for x, y in zip(data.inputs, data.targets)]


# ----------------------------------------------------------------------------- vocabulary


def test_specials_and_tasks():
    assert (BOS, EOS, BOS_ID, EOS_ID) == ("<s>", "</s>", 2, 3)
    assert (PAD_ID, UNK_ID) == (0, 1)
    assert "seq2seq" in TASKS and TASKS[:4] == ("classify", "tag", "lm", "regress")
    assert SEQ2SEQ == ["reverse", "copy", "sort", "addition", "dates"]


def test_build_seq2seq_vocab():
    sequences = [["b", "a", "c"], ["a", "c", "d"], ["a", BOS]]
    vocab = Vocab.build_seq2seq(sequences)
    assert vocab.tokens == [*SPECIALS, "a", "c", "b", "d"]  # specials, then as build sorts
    assert vocab.is_seq2seq
    assert Vocab.build_seq2seq(sequences, min_count=2).tokens == [*SPECIALS, "a", "c"]
    # the other tasks' vocabularies do not change
    assert Vocab.build([["b", "a", "c"], ["a", "c", "d"]]).tokens == [PAD, UNK, "a", "c", "b", "d"]
    assert not Vocab.build([["a"]]).is_seq2seq
    assert Vocab.seq2seq(["x", "y"]).tokens == [*SPECIALS, "x", "y"]
    assert Vocab.from_list(vocab.to_list()) == vocab


# ----------------------------------------------------------------------------- built-ins


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_builtin_is_deterministic_by_seed(name):
    a, b, c = (builtin(name, samples=60, seed=s) for s in (0, 0, 1))
    assert all(np.array_equal(x, y) for x, y in zip(a.inputs, b.inputs))
    assert all(np.array_equal(x, y) for x, y in zip(a.targets, b.targets))
    assert not all(np.array_equal(x, y) for x, y in zip(a.inputs, c.inputs))
    assert a.vocab == c.vocab  # a closed alphabet: ids do not depend on the seed


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_builtin_fields_shapes_and_dtypes(name):
    data = builtin(name, samples=80)
    assert (data.task, data.name, len(data)) == ("seq2seq", name, 80)
    assert (data.labels, data.target_at, data.tokenizer) == (None, "all", "char")
    assert data.vocab.tokens[:4] == SPECIALS
    assert data.input_size == data.output_size == len(data.vocab)
    for x, y in zip(data.inputs, data.targets):
        assert x.dtype == y.dtype == np.int64 and x.ndim == y.ndim == 1
        assert len(x) >= 1 and x.min() >= len(SPECIALS)  # no specials in a source
        assert y[0] == BOS_ID and y[-1] == EOS_ID and len(y) >= 3
        assert y[1:-1].min() >= len(SPECIALS) and y.max() < len(data.vocab)


def test_builtin_defaults():
    assert {name: len(builtin(name)) for name in SEQ2SEQ} == dict.fromkeys(SEQ2SEQ, 5000)
    lengths = Counter(builtin("reverse").lengths.tolist())
    assert sorted(lengths) == list(range(5, 13))  # lengths 5-12, each about 1/8 of the time
    assert min(lengths.values()) > 5000 / 8 * 0.8
    assert builtin("reverse").vocab.tokens[4:] == [str(d) for d in range(10)]  # 10 symbols
    operands = [int(s) for source, _ in pairs(builtin("addition", samples=500))
                for s in source.split("+")]
    assert max(operands) < 1000 and max(operands) > 900  # 3 digits per operand


def test_reverse_copy_sort_targets():
    data = {name: builtin(name, samples=300, seq_len=9, seed=4) for name in
            ("reverse", "copy", "sort")}
    assert all(np.array_equal(a, b) for a, b in zip(data["reverse"].inputs, data["sort"].inputs))
    for (src, rev), (_, cop), (_, srt) in zip(*(pairs(d) for d in data.values())):
        assert re.fullmatch(r"[0-9]{5,9}", src)
        assert (rev, cop, srt) == (src[::-1], src, "".join(sorted(src)))


@pytest.mark.parametrize("seq_len, low", [(1, 1), (3, 3), (5, 5), (7, 5)])
def test_digit_string_lengths(seq_len, low):
    lengths = set(builtin("copy", samples=400, seq_len=seq_len).lengths.tolist())
    assert lengths == set(range(low, seq_len + 1))


@pytest.mark.parametrize("digits", [1, 3, 18])
def test_addition_targets(digits):
    data = builtin("addition", samples=300, seq_len=digits, seed=digits)
    assert data.vocab.tokens[4:] == [*(str(d) for d in range(10)), "+"]
    for source, target in pairs(data):
        a, b = source.split("+")
        assert str(int(a)) == a and str(int(b)) == b  # no leading zeros
        assert 0 <= int(a) < 10**digits and 0 <= int(b) < 10**digits
        assert target == str(int(a) + int(b))


MONTHS = {name: i for i, name in enumerate(
    "january february march april may june july august september october november "
    "december".split(), start=1)}
MONS = {name[:3]: i for name, i in MONTHS.items()}
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
SUFFIX = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}
# each format: a pattern with named groups; month/mon say which name table the month uses
DATE_PATTERNS = {
    "5 march 1998": r"(?P<day>\d{1,2}) (?P<month>[a-z]+) (?P<year>\d{4})",
    "march 5, 1998": r"(?P<month>[a-z]+) (?P<day>\d{1,2}), (?P<year>\d{4})",
    "mar 5 1998": r"(?P<mon>[a-z]{3}) (?P<day>\d{1,2}) (?P<year>\d{4})",
    "5th of march 1998": r"(?P<day>\d{1,2})(?P<suffix>st|nd|rd|th) of (?P<month>[a-z]+) "
                         r"(?P<year>\d{4})",
    "thursday, march 5, 1998": r"(?P<weekday>[a-z]+), (?P<month>[a-z]+) (?P<day>\d{1,2}), "
                               r"(?P<year>\d{4})",
    "thu 5 mar 1998": r"(?P<wd>[a-z]{3}) (?P<day>\d{1,2}) (?P<mon>[a-z]{3}) (?P<year>\d{4})",
}


def parse_date(source: str) -> tuple[str, datetime.date]:
    """(the format's name, the date) of a spelled-out date; checks the weekday and the
    ordinal suffix where the format has them."""
    for style, pattern in DATE_PATTERNS.items():
        m = re.fullmatch(pattern, source)
        if not m:
            continue
        g = m.groupdict()
        month = MONTHS[g["month"]] if "month" in g else MONS[g["mon"]]
        day = datetime.date(int(g["year"]), month, int(g["day"]))
        if "weekday" in g:
            assert g["weekday"] == WEEKDAYS[day.weekday()], source
        if "wd" in g:
            assert g["wd"] == WEEKDAYS[day.weekday()][:3], source
        if "suffix" in g:
            assert g["suffix"] == SUFFIX.get(day.day, "th"), source
        return style, day
    raise AssertionError(f"{source!r} is in no known format")


def test_dates_targets():
    data = builtin("dates", samples=1500, seed=7)
    styles, days = Counter(), []
    for source, target in pairs(data):
        style, day = parse_date(source)
        assert target == f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
        assert datetime.date(1950, 1, 1) <= day <= datetime.date(2049, 12, 31)
        styles[style] += 1
        days.append(day)
    assert set(styles) == set(DATE_PATTERNS) and min(styles.values()) > 150
    years = [d.year for d in days]
    assert min(years) < 1955 and max(years) > 2044
    assert UNK_ID not in np.concatenate(data.inputs)  # a closed alphabet
    assert max(len(x) for x in data.inputs) <= len("wednesday, september 30, 2049")


def test_ordinal_suffixes_on_every_day():
    from seqtool.core.data.builtin import ordinal

    assert [ordinal(d) for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 30, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "30th",
        "31st"]


@pytest.mark.parametrize("kwargs, key, fragments", [
    (dict(name="dates", seq_len=10), "seq_len", ["does not apply to dates"]),
    (dict(name="addition", seq_len=19), "seq_len",
     ["is 19; expected 1 to 18 for addition (digits per operand)"]),
    (dict(name="reverse", seq_len=0), "seq_len", ["is 0; expected 1 to 10,000 for reverse"]),
    (dict(name="sort", seq_len=2.5), "seq_len", ["whole number"]),
    (dict(name="copy", samples=0), "samples", ["is 0; expected 1 to"]),
    (dict(name="dates", samples=True), "samples", ["whole number"]),
    (dict(name="reverse", delay=2), "delay", ["applies only to echo, not to reverse"]),
    (dict(name="revers"), "data", ["built-in sets:", "reverse, copy, sort, addition, dates"]),
])
def test_builtin_bad_settings(kwargs, key, fragments):
    name = kwargs.pop("name")
    with raises(key, *fragments):
        builtin(name, **kwargs)


def test_prepare_builtin():
    train, val = prepare("sort", samples=100, seq_len=6, val_fraction=0.2, seed=1)
    assert (len(train), len(val), train.task) == (80, 20, "seq2seq")
    assert train.vocab is val.vocab
    assert prepare("dates", "seq2seq", samples=10)[0].name == "dates"
    with raises("task", "is 'lm' but addition is a seq2seq data set"):
        prepare("addition", "lm")
    with raises("max_len", "built-in sets take seq_len"):
        prepare("copy", max_len=3)


def test_unigram_entropy_leaves_out_bos():
    data = Dataset("seq2seq", "t", [np.array([4])], [np.array([BOS_ID, 4, 4, 5, EOS_ID])],
                   Vocab.seq2seq(["a", "b"]), None, "all", "char", 6, 6)
    p = np.array([2, 1, 1]) / 4  # a, a, b, </s>
    assert math.isclose(unigram_entropy(data), float(-(p * np.log(p)).sum()), rel_tol=1e-12)


# ----------------------------------------------------------------------------- batches


def ragged() -> Dataset:
    """Sources of lengths 3, 1, 5 and targets of 2, 4, 0 tokens (plus BOS, EOS)."""
    vocab = Vocab.seq2seq(list("abcdef"))
    sources = [np.array(x, dtype=np.int64) for x in ([4, 5, 6], [7], [8, 9, 4, 5, 6])]
    targets = [np.array([BOS_ID, *y, EOS_ID], dtype=np.int64)
               for y in ([9, 8], [4, 4, 5, 6], [])]
    return Dataset("seq2seq", "r", sources, targets, vocab, None, "all", "char",
                   len(vocab), len(vocab))


def test_make_batch_shapes_and_padding():
    data = ragged()
    order = [2, 0, 1]
    batch = make_batch(data, np.array(order))
    assert batch.inputs.shape == batch.mask.shape == (5, 3) and batch.inputs.dtype == np.int64
    assert batch.lengths.tolist() == [5, 3, 1] and batch.lengths.dtype == np.int64
    assert batch.targets.shape == (6, 3) and batch.targets.dtype == np.int64  # M + 2 = 6
    for b, i in enumerate(order):
        S, T = len(data.inputs[i]), len(data.targets[i])
        assert batch.inputs[:S, b].tolist() == data.inputs[i].tolist()
        assert (batch.inputs[S:, b] == PAD_ID).all()
        assert batch.mask[:, b].tolist() == [t < S for t in range(5)]
        assert batch.targets[:T, b].tolist() == data.targets[i].tolist()
        assert (batch.targets[T:, b] == IGNORE).all()


def plain_decoder_io(data: Dataset, order: list[int]):
    """decoder_io's arrays built one element at a time from the dataset's targets."""
    N = max(len(data.targets[i]) for i in order) - 1
    inputs = [[PAD_ID] * len(order) for _ in range(N)]
    targets = [[IGNORE] * len(order) for _ in range(N)]
    lengths = []
    for b, i in enumerate(order):
        y = data.targets[i].tolist()
        for n in range(len(y) - 1):
            inputs[n][b], targets[n][b] = y[n], y[n + 1]
        lengths.append(len(y) - 1)
    return inputs, targets, lengths


@pytest.mark.parametrize("source", ["ragged", "dates", "addition"])
def test_decoder_io_against_plain_python(source):
    data = ragged() if source == "ragged" else builtin(source, samples=40, seed=3)
    order = [2, 0, 1] if source == "ragged" else list(range(40))[::-3]
    io = decoder_io(make_batch(data, np.array(order)))
    assert isinstance(io, DecoderIO)
    inputs, targets, lengths = plain_decoder_io(data, order)
    assert io.inputs.dtype == io.targets.dtype == io.lengths.dtype == np.int64
    assert io.inputs.tolist() == inputs and io.targets.tolist() == targets
    assert io.lengths.tolist() == lengths
    assert io.mask.tolist() == [[t != IGNORE for t in row] for row in targets]
    assert np.array_equal(io.mask, io.inputs != PAD_ID)  # no EOS fed in at a padded step
    assert (io.inputs[0] == BOS_ID).all() and IGNORE not in io.inputs


def test_decoder_io_refuses_other_batches():
    with pytest.raises(ValueError, match="seq2seq batch"):
        decoder_io(make_batch(builtin("echo", samples=4), np.arange(4)))
    with pytest.raises(ValueError, match="seq2seq batch"):
        decoder_io(make_batch(builtin("parity", samples=4), np.arange(4)))


# ----------------------------------------------------------------------------- files

PAIRS = [("abc", "cba"), ("hello world", "dlrow olleh"), ("xyz", "zyx"), ("ab", "ba")] * 3


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def pairs_file(tmp_path, ext, rows=PAIRS, name="p"):
    if ext == ".jsonl":
        content = "".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in rows)
    elif ext == ".csv":
        content = "source,target\n" + "".join(f'"{s}","{t}"\n' for s, t in rows)
    else:
        content = "source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in rows)
    return write(tmp_path, name + ext, content)


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl"])
def test_read_pairs(tmp_path, ext):
    path = pairs_file(tmp_path, ext)
    assert infer_task(path, "data") == "seq2seq"
    data = read_data(path, "seq2seq", tokenizer="char")
    assert (data.task, data.name, len(data)) == ("seq2seq", "p" + ext, 12)
    assert (data.labels, data.target_at, data.tokenizer) == (None, "all", "char")
    assert data.vocab.tokens[:4] == SPECIALS
    assert set(data.vocab.tokens[4:]) == set("abcdehlorwxyz ")
    assert data.input_size == data.output_size == len(data.vocab)
    assert pairs(data) == PAIRS
    assert all(y[0] == BOS_ID and y[-1] == EOS_ID for y in data.targets)


def test_tokenizers_apply_to_both_sides(tmp_path):
    path = write(tmp_path, "w.tsv", "source\ttarget\nHello, World\tBonjour  le monde\n")
    words = read_data(path, "seq2seq", tokenizer="word")
    assert words.vocab.decode(words.inputs[0]) == ["hello", ",", "world"]
    assert words.vocab.decode(words.targets[0]) == [BOS, "bonjour", "le", "monde", EOS]
    space = read_data(path, "seq2seq", tokenizer="space")
    assert space.vocab.decode(space.inputs[0]) == ["Hello,", "World"]
    assert space.tokenizer == "space"


def test_max_len_cuts_sources_and_targets(tmp_path):
    data = read_data(pairs_file(tmp_path, ".tsv"), "seq2seq", tokenizer="char", max_len=3)
    assert pairs(data)[1] == ("hel", "dlr")
    assert max(len(x) for x in data.inputs) == 3 and max(len(y) for y in data.targets) == 5


def test_prepare_vocab_from_training_sources_and_targets(tmp_path):
    rows = [(f"q{i} w", f"t{i} w") for i in range(40)]
    path = pairs_file(tmp_path, ".jsonl", rows)
    train, val = prepare(path, val_fraction=0.25, seed=2)  # task from the keys
    assert (train.task, len(train), len(val)) == ("seq2seq", 30, 10)
    assert val.vocab is train.vocab and train.vocab.tokens[:4] == SPECIALS
    seen = {t for x in train.inputs for t in train.vocab.decode(x)}
    seen |= {t for y in train.targets for t in train.vocab.decode(y[1:-1])}
    assert set(train.vocab.tokens[4:]) == seen and {"q0", "t0"} & seen
    for x, y in zip(val.inputs, val.targets):  # each row's words were never in training
        assert val.vocab.decode(x) == [UNK, "w"]
        assert val.vocab.decode(y) == [BOS, UNK, "w", EOS]


def test_read_data_with_a_model_vocab(tmp_path):
    vocab = Vocab.seq2seq(list("abc"))
    data = read_data(pairs_file(tmp_path, ".csv"), "seq2seq", vocab=vocab, tokenizer="char")
    assert data.vocab is vocab
    assert data.inputs[0].tolist() == [4, 5, 6] and data.targets[2].tolist() == [
        BOS_ID, UNK_ID, UNK_ID, UNK_ID, EOS_ID]
    assert encode_texts(["cab!"], vocab, "char")[0].tolist() == [6, 4, 5, UNK_ID]
    with raises("vocab", "starts <pad>, <unk>, a, b; a seq2seq vocabulary starts <pad>, "
                         "<unk>, <s>, </s>"):
        read_data(pairs_file(tmp_path, ".csv"), "seq2seq", vocab=Vocab.build([["a", "b"]]))


@pytest.mark.parametrize("name, content, fragments", [
    ("m.csv", "source,tgt\na,b\n", ["m.csv has no 'target' column (header: source,tgt)",
                                    "expected a header source,target"]),
    ("e.csv", "source,target\na,b\n,c\n", ["e.csv line 3 has no 'source' column value"]),
    ("e.tsv", "source\ttarget\na\tb\nc\t \n", ["e.tsv line 3 has no 'target' column value"]),
    ("e.tsv", "source\ttarget\na\tb\nc\n", ["e.tsv line 3 has no 'target' column value"]),
    ("j.jsonl", '{"source": "a", "target": "b"}\n{"source": "c"}\n',
     ["j.jsonl line 2 has no 'target' column value"]),
    ("j.jsonl", '{"source": "a", "target": ""}\n', ["line 1 has no 'target' column value"]),
    ("l.jsonl", '{"source": ["a", "b"], "target": "b"}\n',
     ["l.jsonl line 1 has a list as its 'source'; expected a string"]),
    ("r.tsv", "source\ttarget\na </s> b\tb\n",
     ["r.tsv line 2 has the token '</s>' in its 'source'; seq2seq reserves"]),
    ("w.csv", "source,target\na,\x1c\x85\n", ["w.csv line 2 has no 'target' column value"]),
    ("x.txt", "source,target\na,b\n", ["has the extension '.txt'; seq2seq reads .csv, .tsv"]),
])
def test_bad_files(tmp_path, name, content, fragments):
    with raises("data", *fragments):
        read_data(write(tmp_path, name, content), "seq2seq", tokenizer="space")


def test_bad_settings_for_files(tmp_path):
    path = pairs_file(tmp_path, ".tsv")
    with raises("seq_len", "applies only to built-in data sets"):
        prepare(path, "seq2seq", seq_len=5)
    with raises("tokenizer", "is 'bpe'"):
        prepare(path, "seq2seq", tokenizer="bpe")
    with raises("max_len", "is 0"):
        read_data(path, "seq2seq", max_len=0)
    with raises("val", "which does not exist"):
        prepare(path, "seq2seq", val=str(tmp_path / "none.tsv"))
