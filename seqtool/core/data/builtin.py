"""Built-in data sets, generated in code: deterministic by seed, nothing downloaded.

    sentiment  classify  short reviews -> neg/pos; the clause after "but" decides (sentiment.py)
    parity     classify  bits "0"/"1" of length seq_len -> even/odd number of 1s
    adding     regress   (T, 2): values U[0, 1] and a 0/1 marker on two steps, one in each
                         half -> their sum, one number per sequence (Hochreiter & Schmidhuber)
    echo       tag       symbols a..h -> at step t the symbol of step t − delay ("-" before)
    sine       regress   noisy mixtures of 2-3 sines: x_t -> x_{t+1} at every step
    dyck       lm        "^" + balanced "()"/"[]" string + "$", next-character prediction
    reverse    seq2seq   digit strings "0".."9", lengths uniform over min(5, seq_len)..seq_len
                         -> the same string reversed
    copy       seq2seq   the same digit strings -> themselves
    sort       seq2seq   the same digit strings -> their digits in ascending order
    addition   seq2seq   "a+b", a and b uniform over 0..10^seq_len − 1 -> the digits of a + b
    dates      seq2seq   a day of 1950-2049 spelled out in one of six formats ("5th of march
                         1998", "thursday, march 5, 1998", ...) -> ISO 8601 "1998-03-05"

Defaults (samples, seq_len) are in ``DEFAULTS``. The seq2seq sets are char tokens over a
closed alphabet (vocabulary ``[<pad>, <unk>, <s>, </s>, ...]``, the same whatever the
seed); reverse, copy and sort draw the same source strings for the same seed, samples and
seq_len.
"""

from __future__ import annotations

import datetime
import string

import numpy as np

from seqtool.core.data.dataset import Dataset
from seqtool.core.data.sentiment import LABELS as SENTIMENT_LABELS
from seqtool.core.data.sentiment import generate_reviews, vocabulary
from seqtool.core.data.vocab import PAD, SEQ2SEQ_SPECIALS, UNK, Vocab, tokenize, with_bos_eos
from seqtool.core.errors import InputError

BUILTIN_TASKS = {"sentiment": "classify", "parity": "classify", "adding": "regress",
                 "echo": "tag", "sine": "regress", "dyck": "lm", "reverse": "seq2seq",
                 "copy": "seq2seq", "sort": "seq2seq", "addition": "seq2seq",
                 "dates": "seq2seq"}
DEFAULTS = {  # samples, seq_len (None: not a setting of this set)
    "sentiment": (3000, None), "parity": (2000, 8), "adding": (2000, 20),
    "echo": (2000, 12), "sine": (1000, 40), "dyck": (2000, 24),
    "reverse": (5000, 12), "copy": (5000, 12), "sort": (5000, 12), "addition": (5000, 3),
    "dates": (5000, None),
}
MIN_SEQ_LEN = {"parity": 1, "adding": 2, "echo": 2, "sine": 1, "dyck": 2,
               "reverse": 1, "copy": 1, "sort": 1, "addition": 1}
MAX_SAMPLES = 1_000_000
MAX_SEQ_LEN = 10_000
ADDITION_MAX_DIGITS = 18  # a + b < 2·10^18: exact in int64, and short strings
MAX_SEQ_LEN_OF = {"addition": ADDITION_MAX_DIGITS}  # sets with a tighter bound than MAX_SEQ_LEN
SEQ_LEN_MEANS = {"addition": "digits per operand"}  # where seq_len is not a length in tokens
NO_SEQ_LEN = {  # why seq_len is no setting of these sets
    "sentiment": "whose reviews are 3 to 14 words long",
    "dates": "whose sources are spelled-out dates of 1950-2049",
}
ECHO_SYMBOLS = list("abcdefgh")
ECHO_BLANK = "-"
DEFAULT_DELAY = 3
DYCK_BEGIN, DYCK_END = "^", "$"
DYCK_PAIRS = {"(": ")", "[": "]"}
SINE_NOISE = 0.05
DIGITS = [str(d) for d in range(10)]
DIGIT_MIN_LEN = 5  # digit strings are min(5, seq_len) to seq_len long
DATE_FIRST, DATE_LAST = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
# str.format fields: day "5", ordinal "5th", month "march", mon "mar", year "1998",
# weekday "thursday", wd "thu" (the weekday of that date)
DATE_FORMATS = (
    "{day} {month} {year}",
    "{month} {day}, {year}",
    "{mon} {day} {year}",
    "{ordinal} of {month} {year}",
    "{weekday}, {month} {day}, {year}",
    "{wd} {day} {mon} {year}",
)


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


def _seq2seq(name: str, vocab: Vocab, sources: list[np.ndarray],
             targets: list[np.ndarray]) -> Dataset:
    """A generated seq2seq set: char tokens, ``targets[i]`` already ``[BOS, ..., EOS]``."""
    return Dataset(
        task="seq2seq", name=name, inputs=sources, targets=targets, vocab=vocab, labels=None,
        target_at="all", tokenizer="char", input_size=len(vocab), output_size=len(vocab),
    )


def _encode_pairs(name: str, vocab: Vocab, pairs: list[tuple[str, str]]) -> Dataset:
    """(source, target) strings as a seq2seq set, one token per character."""
    sources = [vocab.encode(list(source)) for source, _ in pairs]
    targets = [with_bos_eos(vocab.encode(list(target))) for _, target in pairs]
    return _seq2seq(name, vocab, sources, targets)


def digit_strings(rng: np.random.Generator, samples: int, seq_len: int) -> list[np.ndarray]:
    """``samples`` int64 arrays of digits 0..9, lengths uniform over min(5, seq_len)..seq_len
    (views into one array: the digits are drawn in one call)."""
    lengths = rng.integers(min(DIGIT_MIN_LEN, seq_len), seq_len + 1, size=samples)  # (N,)
    digits = rng.integers(0, len(DIGITS), size=int(lengths.sum()))
    return np.split(digits, np.cumsum(lengths)[:-1])


DIGIT_TASKS = {  # source ids -> target ids (without BOS/EOS); ids grow with the digit
    "reverse": lambda ids: ids[::-1],
    "copy": lambda ids: ids,
    "sort": np.sort,
}


def make_digit_task(name: str, samples: int, seq_len: int, seed: int) -> Dataset:
    """reverse, copy or sort: digit strings -> the string transformed by DIGIT_TASKS[name]."""
    vocab = Vocab.seq2seq(DIGITS)  # digit d has the id len(SEQ2SEQ_SPECIALS) + d
    transform = DIGIT_TASKS[name]
    sources = [d + len(SEQ2SEQ_SPECIALS) for d in
               digit_strings(np.random.default_rng(seed), samples, seq_len)]
    return _seq2seq(name, vocab, sources, [with_bos_eos(transform(x)) for x in sources])


def make_addition(samples: int, digits: int, seed: int) -> Dataset:
    """"a+b" -> str(a + b), a and b uniform over 0..10^digits − 1, no leading zeros."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 10**digits, size=samples).tolist()  # Python ints: exact sums
    b = rng.integers(0, 10**digits, size=samples).tolist()
    vocab = Vocab.seq2seq([*DIGITS, "+"])
    return _encode_pairs("addition", vocab, [(f"{x}+{y}", str(x + y)) for x, y in zip(a, b)])


def ordinal(day: int) -> str:
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 22 -> "22nd"."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def spell_date(day: datetime.date, fmt: str) -> str:
    """``day`` written in ``fmt``, one of DATE_FORMATS (lower case, English names)."""
    month, weekday = MONTHS[day.month - 1], WEEKDAYS[day.weekday()]
    return fmt.format(day=day.day, ordinal=ordinal(day.day), month=month, mon=month[:3],
                      year=day.year, weekday=weekday, wd=weekday[:3])


def date_alphabet() -> list[str]:
    """Every character a spelled-out or ISO date can hold, sorted: the dates vocabulary."""
    literal = "".join(text for fmt in DATE_FORMATS for text, *_ in string.Formatter().parse(fmt))
    names = "".join(MONTHS + WEEKDAYS + DIGITS)
    return sorted(set(literal + names + "stndrdth" + "-"))  # ordinal suffixes, ISO dashes


def make_dates(samples: int, seed: int) -> Dataset:
    """A day uniform over DATE_FIRST..DATE_LAST in a format uniform over DATE_FORMATS ->
    its ISO 8601 form YYYY-MM-DD."""
    rng = np.random.default_rng(seed)
    days = rng.integers(0, (DATE_LAST - DATE_FIRST).days + 1, size=samples).tolist()
    styles = rng.integers(0, len(DATE_FORMATS), size=samples).tolist()
    first = DATE_FIRST.toordinal()
    pairs = []
    for offset, style in zip(days, styles):
        day = datetime.date.fromordinal(first + offset)
        pairs.append((spell_date(day, DATE_FORMATS[style]), day.isoformat()))
    return _encode_pairs("dates", Vocab.seq2seq(date_alphabet()), pairs)


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
    if name in NO_SEQ_LEN:
        if seq_len is not None:
            raise InputError("seq_len", f"does not apply to {name}, {NO_SEQ_LEN[name]}")
    else:
        means = f" ({SEQ_LEN_MEANS[name]})" if name in SEQ_LEN_MEANS else ""
        seq_len = _check_int("seq_len", default_len if seq_len is None else seq_len,
                             MIN_SEQ_LEN[name], MAX_SEQ_LEN_OF.get(name, MAX_SEQ_LEN),
                             f" for {name}{means}")
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
    if name == "dyck":
        return make_dyck(n, seq_len, seed)
    if name in DIGIT_TASKS:
        return make_digit_task(name, n, seq_len, seed)
    if name == "addition":
        return make_addition(n, seq_len, seed)
    return make_dates(n, seed)
