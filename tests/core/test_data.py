"""seqtool.core.data: built-in sets against recomputations, file readers, errors, batches."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from harness import assert_close

from seqtool.core.data import (
    BUILTIN_TASKS, IGNORE, PAD, TASKS, UNK, Dataset, Vocab, batch_indices, builtin,
    encode_texts, make_batch, prepare, read_data, tokenize, unigram_entropy,
)
from seqtool.core.data.sentiment import PHRASES, vocabulary
from seqtool.core.errors import InputError


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def raises(key, *fragments):
    """pytest.raises for an InputError about ``key`` whose message holds every fragment."""
    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(InputError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.ctx.__exit__(*exc)
            err = self.info.value
            assert err.key == key, str(err)
            for fragment in fragments:
                assert fragment in err.message, f"{fragment!r} not in {err.message!r}"
            assert "\n" not in err.message
            return suppressed
    return Check()


# ----------------------------------------------------------------------------- built-ins

SMALL = {"samples": 50}


@pytest.mark.parametrize("name", list(BUILTIN_TASKS))
def test_builtin_is_deterministic_by_seed(name):
    a, b, c = (builtin(name, seed=s, **SMALL) for s in (0, 0, 1))
    assert all(np.array_equal(x, y) for x, y in zip(a.inputs, b.inputs))
    assert all(np.array_equal(x, y) for x, y in zip(a.targets, b.targets))
    assert not all(np.array_equal(x, y) for x, y in zip(a.inputs, c.inputs))
    assert a.vocab == c.vocab  # a closed alphabet: ids do not depend on the seed


@pytest.mark.parametrize("name", list(BUILTIN_TASKS))
def test_builtin_shapes_and_dtypes(name):
    data = builtin(name, **SMALL)
    assert data.task == BUILTIN_TASKS[name] and data.name == name and len(data) == 50
    for x, y in zip(data.inputs, data.targets):
        T = len(x)
        assert T >= 1
        if data.task == "regress":
            assert data.vocab is None and data.labels is None and data.tokenizer is None
            assert x.dtype == np.float64 and x.shape == (T, data.input_size)
            assert y.dtype == np.float64
            O = data.output_size
            assert y.shape == ((T, O) if data.target_at == "all" else (O,))
        else:
            assert x.dtype == np.int64 and x.shape == (T,)
            assert data.input_size == len(data.vocab) and x.min() >= 2  # no PAD/UNK
            assert data.vocab.tokens[:2] == [PAD, UNK]
            assert y.dtype == np.int64
            if data.task == "classify":
                assert y.shape == () and 0 <= y < len(data.labels)
                assert data.target_at == "last" and data.output_size == len(data.labels)
            elif data.task == "tag":
                assert y.shape == (T,) and data.target_at == "all"
                assert data.output_size == len(data.labels)
            elif data.task == "seq2seq":  # [BOS, y_1 .. y_M, EOS], its own length
                assert y.ndim == 1 and y[0] == 2 and y[-1] == 3 and data.labels is None
                assert data.output_size == len(data.vocab)
            else:
                assert y.shape == (T,) and data.labels is None
                assert data.output_size == len(data.vocab)


def test_builtin_defaults():
    assert {n: len(builtin(n)) for n in ("parity", "echo", "adding")} == dict.fromkeys(
        ("parity", "echo", "adding"), 2000)
    assert len(builtin("sentiment")) == 3000 and len(builtin("sine")) == 1000
    assert {len(x) for x in builtin("parity").inputs} == {8}
    assert {len(x) for x in builtin("adding").inputs} == {20}
    assert {len(x) for x in builtin("sine").inputs} == {40}
    assert max(len(x) for x in builtin("dyck").inputs) == 25  # 24 brackets + "^"


def test_parity_targets():
    data = builtin("parity", samples=300, seq_len=11, seed=3)
    assert data.labels == ["even", "odd"]
    for x, y in zip(data.inputs, data.targets):
        bits = data.vocab.decode(x)
        assert len(bits) == 11
        assert data.labels[int(y)] == ("odd" if bits.count("1") % 2 else "even")


def test_adding_targets():
    data = builtin("adding", samples=300, seq_len=9, seed=2)
    assert (data.input_size, data.output_size, data.target_at) == (2, 1, "last")
    for x, y in zip(data.inputs, data.targets):
        marked = np.flatnonzero(x[:, 1])
        assert set(x[:, 1]) <= {0.0, 1.0} and len(marked) == 2
        assert marked[0] < 9 // 2 <= marked[1]
        assert np.all((x[:, 0] >= 0) & (x[:, 0] <= 1))
        assert y.tolist() == [x[marked[0], 0] + x[marked[1], 0]]


@pytest.mark.parametrize("delay", [0, 3, 5])
def test_echo_targets(delay):
    data = builtin("echo", samples=100, seq_len=7, delay=delay, seed=1)
    assert data.labels[0] == "-" and len(data.vocab) == 10
    for x, y in zip(data.inputs, data.targets):
        symbols, tags = data.vocab.decode(x), [data.labels[i] for i in y]
        assert tags == ["-"] * delay + symbols[: 7 - delay]


def test_sine_targets_are_the_next_input():
    data = builtin("sine", samples=20, seq_len=15)
    for x, y in zip(data.inputs, data.targets):
        assert np.array_equal(y[:-1], x[1:])
        assert np.abs(x).max() < 1.5 and x.std() > 0.05


def test_dyck_sequences_are_balanced_and_shifted():
    data = builtin("dyck", samples=300, seq_len=10, seed=4)
    lengths = set()
    for x, y in zip(data.inputs, data.targets):
        full = data.vocab.decode(np.concatenate([x[:1], y]))
        assert np.array_equal(x[1:], y[:-1])
        assert full[0] == "^" and full[-1] == "$"
        stack = []
        for c in full[1:-1]:
            if c in "([":
                stack.append(c)
            else:
                assert stack and {"(": ")", "[": "]"}[stack.pop()] == c
        assert not stack
        lengths.add(len(full) - 2)
    assert lengths == {2, 4, 6, 8, 10}


def test_unigram_entropy():
    data = Dataset("lm", "t", [np.array([2, 3, 2, 2])], [np.array([3, 2, 2, 4])], None, None,
                   "all", "char", 5, 5)
    p = np.array([2, 1, 1]) / 4
    assert_close(unigram_entropy(data), -(p * np.log(p)).sum(), kind="reference")
    # a generated set: from the decoded target characters, counted with a Counter
    dyck = builtin("dyck", samples=200)
    counts = Counter(c for y in dyck.targets for c in dyck.vocab.decode(y))
    n = sum(counts.values())
    expected = -math.fsum(c / n * math.log(c / n) for c in counts.values())
    assert set(counts) == set("()[]$")
    assert_close(unigram_entropy(dyck), expected, kind="reference")


@pytest.mark.parametrize("kwargs, key, fragment", [
    (dict(name="nope"), "data", "built-in sets: sentiment, parity"),
    (dict(name="parity", samples=0), "samples", "is 0; expected 1 to"),
    (dict(name="parity", samples=2.5), "samples", "whole number"),
    (dict(name="adding", seq_len=1), "seq_len", "expected 2 to"),
    (dict(name="echo", seq_len=4, delay=4), "delay", "less than seq_len 4"),
    (dict(name="echo", delay=-1), "delay", "is -1"),
    (dict(name="parity", delay=2), "delay", "applies only to echo"),
    (dict(name="sentiment", seq_len=10), "seq_len", "does not apply to sentiment"),
])
def test_builtin_bad_settings(kwargs, key, fragment):
    name = kwargs.pop("name")
    with raises(key, fragment):
        builtin(name, **kwargs)


# ----------------------------------------------------------------------------- sentiment


def oracle(tokens: list[str]) -> int:
    """The label by the grammar's rule, recomputed: the polar phrase of the clause after the
    last "but", flipped by "not"."""
    clause = tokens[len(tokens) - tokens[::-1].index("but"):] if "but" in tokens else tokens
    found = [s for s in (+1, -1) for p in PHRASES[s]
             if any(clause[i: i + len(p.split())] == p.split() for i in range(len(clause)))]
    assert len(found) == 1, clause
    return int(found[0] * (-1 if "not" in clause else 1) > 0)


def bow_accuracy(train: Dataset, test: Dataset, l2=1e-4, lr=0.5, tol=1e-5) -> float:
    """Token counts -> logistic regression, full-batch gradient descent until the gradient
    vanishes; accuracy on ``test``."""
    V = len(train.vocab)

    def features(data):
        X = np.stack([np.bincount(x, minlength=V) for x in data.inputs]).astype(float)
        return np.hstack([X, np.ones((len(X), 1))])  # (N, V + 1), last column the bias

    X, y = features(train), np.array([int(t) for t in train.targets], dtype=float)
    w = np.zeros(X.shape[1])
    for _ in range(20_000):
        grad = X.T @ (1 / (1 + np.exp(-X @ w)) - y) / len(y) + l2 * w
        w -= lr * grad
        if np.abs(grad).max() < tol:
            break
    assert np.abs(grad).max() < 1e-3  # converged
    X_test = features(test)
    y_test = np.array([int(t) for t in test.targets])
    return float(((X_test @ w > 0) == y_test).mean())


@pytest.fixture(scope="module")
def sentiment():
    return builtin("sentiment")


def test_sentiment_data(sentiment):
    assert sentiment.labels == ["neg", "pos"]
    counts = Counter(int(y) for y in sentiment.targets)
    assert counts[0] == counts[1] == 1500
    assert {len(x) for x in sentiment.inputs} <= set(range(3, 15))
    assert len(sentiment.vocab) - 2 == len(vocabulary()) <= 150
    assert UNK not in sentiment.vocab.decode(np.concatenate(sentiment.inputs))


def test_sentiment_labels_follow_word_order(sentiment):
    seen = {}
    for x, y in zip(sentiment.inputs, sentiment.targets):
        tokens = sentiment.vocab.decode(x)
        assert oracle(tokens) == int(y), " ".join(tokens)  # an order-aware rule: 100%
        assert seen.setdefault(tuple(tokens), int(y)) == int(y)
    # the same words in the other order carry the other label
    swapped = [(tokens[tokens.index("but") + 1:] + ["but"] + tokens[: tokens.index("but")])
               for tokens in map(sentiment.vocab.decode, sentiment.inputs[:300])
               if tokens.count("but") == 1 and tokens[-1] not in ".!"
               and tokens[tokens.index("but") + 1] not in ("not", "it", "i")
               and tokens[0] not in ("honestly", "overall", "in", "to")]
    assert len(swapped) > 30
    for tokens in swapped:
        head = tokens[: tokens.index("but")]
        tail = tokens[tokens.index("but") + 1:]
        assert oracle(head) != oracle(tail)


def test_sentiment_defeats_bag_of_words(sentiment):
    train, test = sentiment.subset(np.arange(2400)), sentiment.subset(np.arange(2400, 3000))
    accuracy = bow_accuracy(train, test)
    print(f"bag-of-words held-out accuracy {accuracy:.3f}")
    assert accuracy <= 0.75


def test_sentiment_words_tokenize_to_themselves():
    assert all(tokenize(w, "word") == [w] for w in vocabulary())


# ----------------------------------------------------------------------------- vocab


def test_vocab_build_and_encode():
    vocab = Vocab.build([["b", "a", "c"], ["a", "c", "d"], ["a"]])
    assert vocab.tokens == [PAD, UNK, "a", "c", "b", "d"]  # count desc, then token
    assert vocab.encode(["a", "zzz", "d"]).tolist() == [2, 1, 5]
    assert vocab.encode(["a"]).dtype == np.int64
    assert vocab.decode(np.array([2, 1])) == ["a", UNK]
    assert len(vocab) == 6
    assert Vocab.build([["a", "b", "a"]], min_count=2).tokens == [PAD, UNK, "a"]
    assert Vocab.from_list(vocab.to_list()) == vocab
    with pytest.raises(ValueError):
        Vocab.from_list(["a", "b"])


def test_tokenize():
    assert tokenize("It's NOT bad, at all!", "word") == ["it's", "not", "bad", ",", "at",
                                                          "all", "!"]
    assert tokenize("ab c", "char") == ["a", "b", " ", "c"]
    assert tokenize(" B-PER  O ", "space") == ["B-PER", "O"]
    with raises("tokenizer", "is 'bpe'"):
        tokenize("x", "bpe")


WORDS = st.lists(st.sampled_from(vocabulary()), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(WORDS)
def test_tokenize_encode_decode_round_trip(words):
    vocab = Vocab([PAD, UNK, *vocabulary()])
    tokens = tokenize(" ".join(words), "word")
    assert tokens == words
    ids = encode_texts([" ".join(words)], vocab, "word")[0]
    assert vocab.decode(ids) == words and UNK not in vocab.decode(ids)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30))
def test_char_round_trip(text):
    vocab = Vocab.build([list(text)])
    assert "".join(vocab.decode(vocab.encode(tokenize(text, "char")))) == text


# ----------------------------------------------------------------------------- files

CLASSIFY = [("good film", "pos"), ("bad film", "neg"), ("very good", "pos"),
            ("so bad", "neg"), ("fine, really", "pos"), ("awful", "neg")] * 5


def classify_file(tmp_path, ext, rows=CLASSIFY, name="c"):
    if ext == ".jsonl":
        text = "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows)
    elif ext == ".csv":
        text = "text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows)
    else:
        text = "text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows)
    return write(tmp_path, name + ext, text)


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl"])
def test_read_classify(tmp_path, ext):
    data = read_data(classify_file(tmp_path, ext), "classify")
    assert (data.task, data.labels, data.target_at, data.tokenizer) == (
        "classify", ["neg", "pos"], "last", "word")
    assert data.name == "c" + ext and len(data) == 30
    assert data.vocab.decode(data.inputs[4]) == ["fine", ",", "really"]
    assert [int(y) for y in data.targets[:3]] == [1, 0, 1]
    assert data.output_size == 2 and data.input_size == len(data.vocab)


TAG = [("The cat sat", "D N V"), ("A dog ran", "D N V"), ("Cats sleep", "N V")] * 4


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl"])
def test_read_tag(tmp_path, ext):
    if ext == ".jsonl":
        text = "".join(json.dumps({"tokens": t, "tags": g.split()}) + "\n" for t, g in TAG)
    else:
        sep = "," if ext == ".csv" else "\t"
        text = f"tokens{sep}tags\n" + "".join(f"{t}{sep}{g}\n" for t, g in TAG)
    data = read_data(write(tmp_path, "t" + ext, text), "tag")
    assert data.labels == ["D", "N", "V"] and data.target_at == "all"
    assert data.tokenizer == "space"
    assert data.vocab.decode(data.inputs[0]) == ["The", "cat", "sat"]  # as written
    assert data.targets[2].tolist() == [1, 2] and data.targets[2].dtype == np.int64


def test_read_lm_chunks(tmp_path):
    path = write(tmp_path, "story.txt", "abcdefghij")
    data = read_data(path, "lm", tokenizer="char", max_len=4)
    decoded = [("".join(data.vocab.decode(x)), "".join(data.vocab.decode(y)))
               for x, y in zip(data.inputs, data.targets)]
    assert decoded == [("abcd", "bcde"), ("efgh", "fghi"), ("i", "j")]
    assert data.labels is None and data.output_size == len(data.vocab) == 12
    words = read_data(write(tmp_path, "w.txt", "The cat. The dog!\nA cat"), "lm")
    assert words.vocab.decode(words.inputs[0]) == ["the", "cat", ".", "the", "dog", "!", "a"]
    assert words.vocab.decode(words.targets[0])[-1] == "cat"


def test_read_regress_all_and_last(tmp_path):
    every = write(tmp_path, "r.csv", "seq,x1,x2,y1\na,1,2,3\na,4,5,6\nb,7,8,9\n")
    data = read_data(every, "regress")
    assert (data.target_at, data.input_size, data.output_size, len(data)) == ("all", 2, 1, 2)
    assert data.inputs[0].tolist() == [[1, 2], [4, 5]] and data.targets[0].tolist() == [[3], [6]]
    assert data.vocab is None and data.labels is None
    last = write(tmp_path, "l.tsv", "seq\tx\ty1\ty2\n1\t0.5\t\t\n1\t-1e-3\t2\t3\n2\t7\t8\t9\n")
    data = read_data(last, "regress", max_len=1)
    assert data.target_at == "last" and data.targets[0].tolist() == [2, 3]
    assert data.inputs[0].tolist() == [[0.5]] and data.inputs[0].dtype == np.float64


def test_max_len_truncates(tmp_path):
    data = read_data(classify_file(tmp_path, ".csv"), "classify", max_len=2)
    assert max(len(x) for x in data.inputs) == 2
    path = write(tmp_path, "t.csv", "tokens,tags\na b c,X Y Z\n")
    assert read_data(path, "tag", max_len=2).targets[0].tolist() == [0, 1]


def test_prepare_file_split_vocab_from_training_only(tmp_path):
    rows = [(f"word{i} common", "pos" if i % 2 else "neg") for i in range(40)]
    train, val = prepare(classify_file(tmp_path, ".csv", rows), "classify", val_fraction=0.25,
                         seed=5)
    assert (len(train), len(val)) == (30, 10)
    train_words = {w for x in train.inputs for w in train.vocab.decode(x)}
    assert train.vocab.tokens[:2] == [PAD, UNK] and set(train.vocab.tokens[2:]) == train_words
    assert val.vocab is train.vocab
    for x in val.inputs:  # each val review's unique word was never in training
        assert train.vocab.decode(x) == [UNK, "common"]
    again, _ = prepare(classify_file(tmp_path, ".csv", rows), "classify", val_fraction=0.25,
                       seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(train.inputs, again.inputs))


def test_prepare_separate_val_file(tmp_path):
    train_path = classify_file(tmp_path, ".jsonl")
    val_path = classify_file(tmp_path, ".csv", [("good unseen", "pos")], name="v")
    train, val = prepare(train_path, val=val_path)  # task inferred from the columns
    assert train.task == "classify" and len(train) == 30 and len(val) == 1
    assert train.vocab.decode(val.inputs[0]) == ["good", UNK]


def test_prepare_infers_tasks(tmp_path):
    assert prepare(write(tmp_path, "a.txt", "hello world " * 20), tokenizer="char",
                   max_len=8)[0].task == "lm"
    tag = write(tmp_path, "t.tsv", "tags\ttokens\n" + "X Y\ta b\n" * 5)
    assert prepare(tag)[0].task == "tag"
    reg = write(tmp_path, "r.csv", "seq,x,y\n" + "".join(f"{i},{i},{i}\n" for i in range(5)))
    assert prepare(reg)[0].task == "regress"


def test_prepare_builtin():
    train, val = prepare("parity", samples=100, seq_len=4, val_fraction=0.2, seed=1)
    assert (len(train), len(val), train.vocab, val.labels) == (80, 20, val.vocab, ["even", "odd"])
    assert {len(x) for x in train.inputs} == {4}
    assert prepare("echo", "tag", samples=10)[0].task == "tag"


def test_encode_texts():
    vocab = Vocab.from_list([PAD, UNK, "good", "film"])
    ids = encode_texts(["Good film!", "bad"], vocab, "word", max_len=2)
    assert [x.tolist() for x in ids] == [[2, 3], [1]]


def test_read_data_with_model_labels(tmp_path):
    path = classify_file(tmp_path, ".csv")
    vocab = Vocab.from_list([PAD, UNK, "good"])
    data = read_data(path, "classify", vocab=vocab, labels=["neg", "pos", "zzz"])
    assert data.labels == ["neg", "pos", "zzz"] and data.output_size == 3
    assert data.inputs[0].tolist() == [2, 1]
    with raises("data", "has the label 'neg' (line 3), which the model was never trained on",
                "labels: pos"):
        read_data(path, "classify", vocab=vocab, labels=["pos"])


# ----------------------------------------------------------------------------- bad files


def test_missing_file_and_builtin_names(tmp_path):
    with raises("data", f"names the file '{tmp_path}/x.tsv', which does not exist"):
        prepare(str(tmp_path / "x.tsv"), "classify")
    with raises("val", "which does not exist"):
        prepare(classify_file(tmp_path, ".csv"), "classify", val=str(tmp_path / "v.csv"))
    with raises("data", "is a directory"):
        read_data(str(tmp_path), "lm")


@pytest.mark.parametrize("content, task, fragments", [
    ("", "classify", ["is empty"]),
    ("  \n\n", "lm", ["is empty"]),
    (b"text,label\nab\xffc,pos\n", "classify", ["is not UTF-8 text (byte 0xff at offset 13)"]),
    ("text,label\n", "classify", ["has a header but no rows"]),
    ("txt,label\nhi,pos\n", "classify", ["has no 'text' column (header: txt,label)",
                                          "expected a header text,label"]),
    ("text,label\nhi,pos\nthere\n", "classify",
     ["line 3 has no 'label' column value; expected text,label"]),
    ("text,label\nhi,pos\n,neg\n", "classify", ["line 3 has no 'text' column value"]),
    ("text,label\nhi, there,pos\n", "classify",
     ["line 2 has 3 fields but the header has 2 (quote text that contains commas)"]),
    ('text,label\n"hi,pos\n', "classify", ["line 2 is not valid CSV (unexpected end of data)"]),
    ("tokens,tags\na b,X Y\na b c,X Y\n", "tag",
     ["line 3 has 3 tokens but 2 tags; expected one tag per token"]),
    ("seq,x1,y\n1,0.5,1\n1,abc,2\n", "regress",
     ["line 3 has 'abc' in column 'x1', which is not a number"]),
    ("seq,x1,y\n1,nan,1\n", "regress", ["line 2 has 'nan' in column 'x1'; expected a finite"]),
    ("seq,x1,y\n1,1,1\n2,1,1\n1,1,1\n", "regress",
     ["line 4 continues sequence '1', which ended on line 2"]),
    ("seq,x1,y\n1,1,\n1,1,2\n2,1,\n2,3,\n", "regress", ["line 5 has no y values"]),
    ("seq,x1,y\n1,1,5\n1,1,\n", "regress", ["line 2 has y values", "only on the last row"]),
    ("seq,x1,y1,y2\n1,1,5,\n", "regress", ["line 2 has no 'y2' value but other y values"]),
    ("seq,x1,label\n1,1,5\n", "regress", ["has a column 'label'; expected a header seq,x1"]),
    ("x1,y1\n1,5\n", "regress", ["has no 'seq' column"]),
    ("seq,x1,y1\n1,,5\n", "regress", ["line 2 has no 'x1' column value"]),
    ("a", "lm", ["has 1 token; a language model needs at least 2"]),
])
def test_bad_files(tmp_path, content, task, fragments):
    path = write(tmp_path, "bad.txt" if task == "lm" else "bad.csv", content)
    with raises("data", "bad.", *fragments):
        read_data(path, task, tokenizer="char")


def test_utf8_bom_is_skipped_and_offsets_count_it(tmp_path):
    path = write(tmp_path, "b.csv", b"\xef\xbb\xbftext,label\nhi,pos\n")
    assert read_data(path, "classify").labels == ["pos"]
    bad = write(tmp_path, "c.csv", b"\xef\xbb\xbftext,label\n\xc3(,pos\n")
    with raises("data", "byte 0xc3 at offset 14"):
        read_data(bad, "classify")


@pytest.mark.parametrize("line, fragments", [
    ('{"text": "hi", "label": "pos"', ["line 2 is not valid JSON"]),
    ('["hi", "pos"]', ["line 2 is not a JSON object", '"text": ...']),
    ('{"text": "hi"}', ["line 2 has no 'label' column value"]),
    ('{"text": {"a": 1}, "label": "pos"}', ["line 2 has a 'text' that is dict"]),
])
def test_bad_jsonl(tmp_path, line, fragments):
    path = write(tmp_path, "j.jsonl", '{"text": "ok", "label": "neg"}\n' + line + "\n")
    with raises("data", "j.jsonl", *fragments):
        read_data(path, "classify")


def test_wrong_extension_and_task(tmp_path):
    path = write(tmp_path, "c.txt", "text,label\nhi,pos\n")
    with raises("data", "has the extension '.txt'; classify reads .csv, .tsv or .jsonl"):
        read_data(path, "classify")
    with raises("data", "regress reads .csv or .tsv"):
        read_data(write(tmp_path, "r.jsonl", "{}\n"), "regress")
    with raises("task", "is 'sort'; expected one of classify, tag, lm, regress"):
        read_data(path, "sort")
    with raises("task", "the columns of", "name no task"):
        prepare(write(tmp_path, "q.csv", "a,b\n1,2\n"))
    with raises("task", "is 'lm' but sentiment is a classify data set"):
        prepare("sentiment", "lm")


def test_bad_prepare_settings(tmp_path):
    path = classify_file(tmp_path, ".csv")
    cases = [
        (dict(tokenizer="bpe"), "tokenizer", "is 'bpe'; expected one of word, char, space"),
        (dict(max_len=0), "max_len", "is 0; expected a whole number"),
        (dict(samples=10), "samples", "applies only to built-in data sets"),
        (dict(delay=1), "delay", "applies only to built-in data sets"),
        (dict(val_fraction=1.0), "val_fraction", "is 1.0; expected a number between 0 and 1"),
    ]
    for kwargs, key, fragment in cases:
        with raises(key, fragment):
            prepare(path, "classify", **kwargs)
    with raises("val", "applies only to data files"):
        prepare("parity", val=path)
    with raises("max_len", "built-in sets take seq_len"):
        prepare("parity", max_len=3)
    with raises("data", "has 1 sequence; a train/validation split needs at least 2"):
        prepare(write(tmp_path, "one.csv", "text,label\nhi,pos\n"), "classify")


def test_val_labels_unseen_in_training(tmp_path):
    train = classify_file(tmp_path, ".csv")
    val = classify_file(tmp_path, ".tsv", [("ok", "pos"), ("fine", "meh")] + [("x", "pos")] * 4
                        + [("y", "meh"), ("z", "so-so")], name="v")
    with raises("val", "has the labels 'meh' (line 3), 'so-so' (line 9), which the training "
                       "data never uses; labels: neg, pos"):
        prepare(train, "classify", val=val)
    tags = write(tmp_path, "t.csv", "tokens,tags\na b,X Y\n" * 5)
    vtags = write(tmp_path, "vt.jsonl", '{"tokens": "a b", "tags": "X Z"}\n')
    with raises("val", "has the tag 'Z' (line 1), which the training data never uses; tags: X, Y"):
        prepare(tags, "tag", val=vtags)
    rare = [("a", "pos"), ("b", "neg")] * 10 + [("c", "rare")]
    with raises("data", "has the label 'rare' (line 22) only in the validation split"):
        for seed in range(50):  # some seed puts the one 'rare' row into validation
            prepare(classify_file(tmp_path, ".csv", rare, name="rare"), "classify", seed=seed)


def test_val_regress_columns_must_match(tmp_path):
    a = write(tmp_path, "a.csv", "seq,x1,y\n1,1,1\n")
    b = write(tmp_path, "b.csv", "seq,x1,x2,y\n1,1,1,1\n")
    with raises("val", "has 2 x columns but the training data has 1"):
        prepare(a, "regress", val=b)


# ----------------------------------------------------------------------------- batches


def test_batch_classify_and_tag():
    data = builtin("echo", samples=3, seq_len=5, delay=1)
    data.inputs[1], data.targets[1] = data.inputs[1][:2], data.targets[1][:2]
    batch = make_batch(data, np.array([1, 0]))
    assert batch.inputs.shape == (5, 2) and batch.inputs.dtype == np.int64
    assert batch.lengths.tolist() == [2, 5] and batch.size == 2
    assert batch.mask[:, 0].tolist() == [True, True, False, False, False]
    assert batch.mask[:, 1].all()
    assert batch.inputs[2:, 0].tolist() == [0, 0, 0]
    assert batch.targets[2:, 0].tolist() == [IGNORE] * 3 == [-1] * 3
    assert np.array_equal(batch.inputs[:, 1], data.inputs[0])
    assert np.array_equal(batch.targets[:2, 0], data.targets[1])

    parity = builtin("parity", samples=4, seq_len=3)
    batch = make_batch(parity, np.arange(4))
    assert batch.targets.shape == (4,)
    assert batch.targets.tolist() == [int(y) for y in parity.targets]


def test_batch_lm_and_regress():
    dyck = builtin("dyck", samples=20, seq_len=8)
    batch = make_batch(dyck, np.arange(20))
    T = int(dyck.lengths.max())
    assert batch.inputs.shape == batch.targets.shape == batch.mask.shape == (T, 20)
    assert np.all((batch.targets == -1) == ~batch.mask)
    assert np.all((batch.inputs == 0) == ~batch.mask)

    sine = builtin("sine", samples=2, seq_len=4)
    sine.inputs[0], sine.targets[0] = sine.inputs[0][:3], sine.targets[0][:3]
    batch = make_batch(sine, [0, 1])
    assert batch.inputs.shape == batch.targets.shape == (4, 2, 1)
    assert batch.inputs[3, 0, 0] == batch.targets[3, 0, 0] == 0.0
    adding = builtin("adding", samples=5, seq_len=6)
    batch = make_batch(adding, np.arange(5))
    assert batch.inputs.shape == (6, 5, 2) and batch.inputs.dtype == np.float64
    assert batch.targets.shape == (5, 1)


def test_batch_indices_cover_everything():
    batches = batch_indices(10, 4, seed=0)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert [b.tolist() for b in batch_indices(5, 2)] == [[0, 1], [2, 3], [4]]


def test_tasks_constant():
    assert TASKS == ("classify", "tag", "lm", "regress", "seq2seq")
    assert set(BUILTIN_TASKS.values()) <= set(TASKS)
