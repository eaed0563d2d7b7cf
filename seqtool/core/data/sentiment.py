"""Short English reviews whose label depends on word order, from a hand-written grammar.

    review  = [opener] clause [ "but" clause2 ] ["." | "!"]
    clause  = subject copula [not] [intensifier] adjective ["at all" after not]
            | subject copula [not] noun-phrase            ("is not a waste of time")
            | subject copula fixed-phrase                 ("is far too long", never negated)
            | "i" [intensifier] verb "it" | "i did not" verb "it"
    clause2 = clause | "it" ... | a bare predicate        ("but not very funny")

The label is the polarity of the last clause: the phrase's own polarity, flipped by "not".
So "fun but far too long" is negative and "far too long but fun" positive, and "not bad at
all" is positive while "not good at all" is negative. After "but" the clauses always have
opposite polarities, and negation is as likely for either polarity, so the words alone say
little: a bag-of-words model sees the same words in both orders (measured in the tests).
"""

from __future__ import annotations

import numpy as np

from seqtool.core.data.vocab import tokenize

LABELS = ["neg", "pos"]
MIN_WORDS, MAX_WORDS = 3, 14

SUBJECTS = [
    "the film", "this film", "the movie", "this movie", "the book", "this book", "the novel",
    "the game", "this game", "the plot", "the story", "the acting", "the ending",
    "the soundtrack", "the script", "the dialogue", "the pacing",
]
PLURAL_SUBJECTS = ["the characters", "the jokes", "the visuals", "the levels"]
OPENERS = ["honestly ,", "overall ,", "in short ,", "to be honest ,"]
INTENSIFIERS = ["very", "really", "incredibly", "truly", "quite", "pretty", "so"]
NEGATED_INTENSIFIERS = ["very", "really", "that", "so", "particularly"]

# Phrases by polarity: +1 positive, −1 negative.
ADJECTIVES = {
    +1: ["good", "great", "fun", "funny", "moving", "clever", "charming", "gripping",
         "brilliant", "wonderful", "beautiful", "smart", "fresh", "enjoyable", "exciting",
         "touching"],
    -1: ["bad", "boring", "dull", "awful", "terrible", "slow", "silly", "bland", "predictable",
         "messy", "weak", "tedious", "confusing", "forgettable", "painful", "clumsy"],
}
NOUN_PHRASES = {
    +1: ["a joy", "a masterpiece", "a must see", "a real treat", "a delight", "worth it"],
    -1: ["a waste of time", "a mess", "a letdown", "a chore", "a disaster", "a bore"],
}
FIXED_PHRASES = {  # read oddly after "not", so never negated
    +1: ["beautifully shot", "well written", "full of heart", "hard to put down",
         "worth every penny", "a lot of laughs"],
    -1: ["far too long", "poorly written", "badly acted", "full of holes",
         "hard to sit through", "a total mess"],
}
VERBS = {  # (past, base): "i loved it", "i did not love it"
    +1: [("loved", "love"), ("enjoyed", "enjoy"), ("liked", "like")],
    -1: [("hated", "hate"), ("disliked", "dislike"), ("regretted", "regret")],
}
# Every polar phrase as it appears in a review, for readers of the data (and the tests).
PHRASES = {
    s: ADJECTIVES[s] + NOUN_PHRASES[s] + FIXED_PHRASES[s]
    + [f"{v} it" for pair in VERBS[s] for v in pair]
    for s in (+1, -1)
}


def vocabulary() -> list[str]:
    """Every word the grammar can produce, sorted."""
    pieces = [*SUBJECTS, *PLURAL_SUBJECTS, *OPENERS, *INTENSIFIERS, *NEGATED_INTENSIFIERS,
              *PHRASES[+1], *PHRASES[-1], "is was are were not at all but i did it . !"]
    return sorted({t for piece in pieces for t in tokenize(piece, "word")})


def _pick(rng: np.random.Generator, options: list):
    return options[rng.integers(len(options))]


def _predicate(rng: np.random.Generator, polarity: int, kind: str) -> list[str]:
    """A copula-less predicate with the given polarity: "not very good", "far too long"."""
    negated = kind != "fixed" and rng.random() < 0.5
    lexical = -polarity if negated else polarity  # "not" flips the phrase's own polarity
    if kind == "fixed":
        return [_pick(rng, FIXED_PHRASES[polarity])]
    if kind == "noun":
        return ["not"] * negated + [_pick(rng, NOUN_PHRASES[lexical])]
    words = ["not"] if negated else []
    if rng.random() < 0.4:
        words.append(_pick(rng, NEGATED_INTENSIFIERS if negated else INTENSIFIERS))
    words.append(_pick(rng, ADJECTIVES[lexical]))
    if negated and rng.random() < 0.3:
        words.append("at all")
    return words


def _clause(rng: np.random.Generator, polarity: int, second: bool) -> list[str]:
    """One clause with the given polarity; after "but" the subject may be "it" or absent."""
    kind = _pick(rng, ["adjective"] * 10 + ["noun"] * 3 + ["fixed"] * 3 + ["verb"] * 4)
    if kind == "verb":
        negated = rng.random() < 0.5
        past, base = _pick(rng, VERBS[-polarity if negated else polarity])
        if negated:
            return ["i did not", base, "it"]
        return ["i"] + ["really"] * (rng.random() < 0.3) + [past, "it"]
    predicate = _predicate(rng, polarity, kind)
    form = rng.random()
    if second and form < 0.35:
        return predicate
    past = rng.random() < 0.5
    if second and form < 0.6:
        return ["it", "was" if past else "is", *predicate]
    if rng.random() < 0.2:
        return [_pick(rng, PLURAL_SUBJECTS), "were" if past else "are", *predicate]
    return [_pick(rng, SUBJECTS), "was" if past else "is", *predicate]


def _review(rng: np.random.Generator, polarity: int) -> str:
    """One review whose label is ``polarity`` (+1 pos, −1 neg)."""
    words = [_pick(rng, OPENERS)] if rng.random() < 0.15 else []
    if rng.random() < 0.55:  # contrast: the clause after "but" decides
        words += _clause(rng, -polarity, False) + ["but"] + _clause(rng, polarity, True)
    else:
        words += _clause(rng, polarity, False)
    if rng.random() < 0.3:
        words.append(_pick(rng, [".", "!"]))
    return " ".join(words)


def generate_reviews(samples: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """``samples`` reviews (3 to 14 word tokens each) and their labels (0 neg, 1 pos), half
    of each label (one more neg if odd), in a seeded random order."""
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1] * (samples // 2) + [0] * (samples % 2), dtype=np.int64)
    labels = labels[rng.permutation(samples)]
    texts = []
    for label in labels:
        while True:  # resample the rare review that is too long
            text = _review(rng, +1 if label else -1)
            if MIN_WORDS <= len(tokenize(text, "word")) <= MAX_WORDS:
                break
        texts.append(text)
    return texts, [int(label) for label in labels]
