"""Built-in data sets, generated in code: deterministic by seed, nothing downloaded.

    sentiment  classify  short reviews -> neg/pos; the clause after "but" decides (sentiment.py)
    parity     classify  bits "0"/"1" of length seq_len -> even/odd number of 1s
    adding     regress   (T, 2): values U[0, 1] and a 0/1 marker on two steps, one in each
                         half -> their sum, one number per sequence (Hochreiter & Schmidhuber)
    echo       tag       symbols a..h -> at step t the symbol of step t − delay ("-" before)
    sine       regress   noisy mixtures of 2-3 sines: x_t -> x_{t+1} at every step
    dyck       lm        "^" + balanced "()"/"[]" string + "$", next-character prediction
"""

from __future__ import annotations

import numpy as np

from seqtool.core.data.dataset import Dataset
from seqtool.core.data.sentiment import LABELS as SENTIMENT_LABELS
from seqtool.core.data.sentiment import generate_reviews, vocabulary
from seqtool.core.data.vocab import PAD, UNK, Vocab, tokenize
from seqtool.core.errors import InputError

BUILTIN_TASKS = {"sentiment": "classify", "parity": "classify", "adding": "regress",
                 "echo": "tag", "sine": "regress", "dyck": "lm"}
DEFAULTS = {  # samples, seq_len (None: not a setting of this set)
    "sentiment": (3000, None), "parity": (2000, 8), "adding": (2000, 20),
    "echo": (2000, 12), "sine": (1000, 40), "dyck": (2000, 24),
}
MIN_SEQ_LEN = {"parity": 1, "adding": 2, "echo": 2, "sine": 1, "dyck": 2}
MAX_SAMPLES = 1_000_000
MAX_SEQ_LEN = 10_000
ECHO_SYMBOLS = list("abcdefgh")
ECHO_BLANK = "-"
DEFAULT_DELAY = 3
DYCK_BEGIN, DYCK_END = "^", "$"
DYCK_PAIRS = {"(": ")", "[": "]"}
SINE_NOISE = 0.05


def _fixed_vocab(tokens: list[str]) -> Vocab:
    """The vocabulary of a generator's closed alphabet: the same ids whatever the seed."""
    return Vocab([PAD, UNK, *tokens])


def make_sentiment(samples: int, seed: int) -> Dataset:
    texts, labels = generate_reviews(samples, seed)
    vocab = _fixed_vocab(vocabulary())
    return Dataset(
        task="classify", name="sentiment",
        inputs=[vocab.encode(tokenize(t, "word")) for t in texts],
        targets=[np.array(y, dtype=np.int64) for y in labels],
        vocab=vocab, labels=list(SENTIMENT_LABELS), target_at="last", tokenizer="word",
        input_size=len(vocab), output_size=len(SENTIMENT_LABELS),
    )


def make_parity(samples: int, seq_len: int, seed: int) -> Dataset:
    """Bits b_1..b_T -> (Σ_t b_t) mod 2, as labels "even"/"odd"."""
    rng = np.random.default_rng(seed)
    vocab = _fixed_vocab(["0", "1"])
    bits = rng.integers(0, 2, size=(samples, seq_len))  # (N, T)
    return Dataset(
        task="classify", name="parity",
        inputs=[vocab.encode([str(b) for b in row]) for row in bits],
        targets=[np.array(row.sum() % 2, dtype=np.int64) for row in bits],
        vocab=vocab, labels=["even", "odd"], target_at="last", tokenizer="char",
        input_size=len(vocab), output_size=2,
    )


def make_adding(samples: int, seq_len: int, seed: int) -> Dataset:
    """x_t = (v_t, m_t), v_t ~ U[0, 1], m_t = 1 at one step of each half -> y = Σ_t v_t m_t."""
    rng = np.random.default_rng(seed)
    T, half = seq_len, seq_len // 2
    values = rng.random((samples, T))  # (N, T)
    first = rng.integers(0, half, size=samples)
    second = rng.integers(half, T, size=samples)
    marks = np.zeros((samples, T))
    marks[np.arange(samples), first] = 1.0
    marks[np.arange(samples), second] = 1.0
    x = np.stack([values, marks], axis=-1)  # (N, T, 2)
    y = (values * marks).sum(axis=1, keepdims=True)  # (N, 1)
    return Dataset(
        task="regress", name="adding", inputs=list(x), targets=list(y), vocab=None,
        labels=None, target_at="last", tokenizer=None, input_size=2, output_size=1,
    )


def make_echo(samples: int, seq_len: int, delay: int, seed: int) -> Dataset:
    """Symbols s_1..s_T -> tags y_t = s_{t−delay} for t > delay, "-" before."""
    rng = np.random.default_rng(seed)
    vocab = _fixed_vocab(ECHO_SYMBOLS)
    labels = [ECHO_BLANK, *ECHO_SYMBOLS]
    symbols = rng.integers(0, len(ECHO_SYMBOLS), size=(samples, seq_len))  # (N, T)
    # tag id of symbol k is k + 1 (after "-"); input id of symbol k is k + 2 (after PAD, UNK)
    tags = np.zeros_like(symbols)
    tags[:, delay:] = symbols[:, : seq_len - delay] + 1
    return Dataset(
        task="tag", name="echo",
        inputs=[(row + 2).astype(np.int64) for row in symbols],
        targets=[row.astype(np.int64) for row in tags],
        vocab=vocab, labels=labels, target_at="all", tokenizer="char",
        input_size=len(vocab), output_size=len(labels),
    )


def make_sine(samples: int, seq_len: int, seed: int) -> Dataset:
    """s(t) = Σ_k a_k sin(ω_k t + φ_k) for 2-3 components (Σ a_k = 1), plus N(0, 0.05²)
    noise; input x_t, target x_{t+1}, both (T, 1)."""
    rng = np.random.default_rng(seed)
    t = np.arange(seq_len + 1)
    inputs, targets = [], []
    for _ in range(samples):
        k = rng.integers(2, 4)
        amplitude = rng.uniform(0.3, 1.0, k)
        amplitude /= amplitude.sum()
        omega = rng.uniform(0.1, 0.6, k)  # radians per step: periods of 10 to 60 steps
        phase = rng.uniform(0.0, 2 * np.pi, k)
        s = (amplitude[:, None] * np.sin(omega[:, None] * t + phase[:, None])).sum(axis=0)
        s += rng.normal(0.0, SINE_NOISE, s.shape)
        inputs.append(s[:-1, None])
        targets.append(s[1:, None])
    return Dataset(
        task="regress", name="sine", inputs=inputs, targets=targets, vocab=None,
        labels=None, target_at="all", tokenizer=None, input_size=1, output_size=1,
    )


def dyck_string(rng: np.random.Generator, pairs: int) -> str:
    """A random balanced string of ``pairs`` bracket pairs of two kinds: at each step open
    (if pairs remain) or close the innermost open bracket, each with probability ½."""
    out, stack, left = [], [], pairs
    while left or stack:
        if left and (not stack or rng.random() < 0.5):
            opener = "([" [rng.integers(2)]
            out.append(opener)
            stack.append(opener)
            left -= 1
        else:
            out.append(DYCK_PAIRS[stack.pop()])
    return "".join(out)


def make_dyck(samples: int, seq_len: int, seed: int) -> Dataset:
    """"^" + a balanced string of even length 2..seq_len (uniform) + "$"; inputs ids[:-1],
    targets ids[1:], so sequences are 3..seq_len + 1 steps long."""
    rng = np.random.default_rng(seed)
    vocab = _fixed_vocab([DYCK_BEGIN, DYCK_END, "(", ")", "[", "]"])
    inputs, targets = [], []
    for _ in range(samples):
        pairs = rng.integers(1, seq_len // 2 + 1)
        ids = vocab.encode([DYCK_BEGIN, *dyck_string(rng, pairs), DYCK_END])
        inputs.append(ids[:-1])
        targets.append(ids[1:])
    return Dataset(
        task="lm", name="dyck", inputs=inputs, targets=targets, vocab=vocab, labels=None,
        target_at="all", tokenizer="char", input_size=len(vocab), output_size=len(vocab),
    )


def _check_int(key: str, value, low: int, high: int, what: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(key, f"is {value!r}; expected a whole number")
    if not low <= value <= high:
        raise InputError(key, f"is {value}; expected {low} to {high:,}{what}")
    return int(value)


def builtin(name: str, *, samples: int | None = None, seq_len: int | None = None,
            delay: int | None = None, seed: int = 0) -> Dataset:
    """The built-in data set ``name`` (see the module docstring); None takes the default."""
    if name not in BUILTIN_TASKS:
        raise InputError("data", f"is '{name}', which is not a built-in data set; "
                                 f"built-in sets: {', '.join(BUILTIN_TASKS)}")
    default_samples, default_len = DEFAULTS[name]
    n = _check_int("samples", default_samples if samples is None else samples, 1, MAX_SAMPLES)
    if name == "sentiment":
        if seq_len is not None:
            raise InputError("seq_len", "does not apply to sentiment, whose reviews are "
                                        "3 to 14 words long")
    else:
        seq_len = _check_int("seq_len", default_len if seq_len is None else seq_len,
                             MIN_SEQ_LEN[name], MAX_SEQ_LEN, f" for {name}")
    if name != "echo" and delay is not None:
        raise InputError("delay", f"applies only to echo, not to {name}")
    if name == "sentiment":
        return make_sentiment(n, seed)
    if name == "parity":
        return make_parity(n, seq_len, seed)
    if name == "adding":
        return make_adding(n, seq_len, seed)
    if name == "echo":
        delay = DEFAULT_DELAY if delay is None else delay
        delay = _check_int("delay", delay, 0, seq_len - 1,
                           f" (less than seq_len {seq_len})")
        return make_echo(n, seq_len, delay, seed)
    if name == "sine":
        return make_sine(n, seq_len, seed)
    return make_dyck(n, seq_len, seed)
