"""Selectors side by side: each claim about argmax vs softmax (and the rest) as a number.

For the same queries, keys and values, every selector gets a row: its weights and outputs,
the entropy H(w) = −Σ w_i log w_i (nats), the support size |{i : w_i > 0}|, the largest
weight, the gradient norms ‖∂(u·o)/∂Q‖ and ‖∂(u·o)/∂K‖ that reach the queries and keys,
whether that gradient is true, zero or a surrogate, and the measured cost of one forward
call. ``measure_cost`` times scores and selection separately as the number of keys grows;
``seqtool.core.recall`` shows what the gradients mean for learning. :func:`compare_report`
puts it all together from arrays and plain values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from seqtool.core.attention import attend, attend_backward, attention_scores, resolve_scale
from seqtool.core.recall import LearningResult, RecallSetup, learn
from seqtool.core.report import Report
from seqtool.core.selectors import resolve_params, select

COST_REPEATS = 15


def entropy(weights: np.ndarray) -> np.ndarray:
    """H(w) = −Σ_i w_i log w_i per row, in nats (0 log 0 = 0)."""
    w = np.asarray(weights)
    logs = np.log(np.where(w > 0, w, 1.0))
    return -(w * logs).sum(axis=-1) + 0.0  # + 0.0 turns −0.0 into 0.0


def time_call(fn: Callable[[], Any], repeats: int = COST_REPEATS,
              min_seconds: float = 2e-4) -> tuple[float, float, float]:
    """Median, 25th and 75th percentile of the time of one call, in microseconds.

    Each repeat runs the call enough times to last ``min_seconds`` (the clock's resolution
    and the loop's overhead would otherwise dominate a call of a few microseconds).
    """
    fn()  # warm up
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(min_seconds / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number * 1e6)
    p25, median, p75 = np.percentile(samples, [25, 50, 75])
    return float(median), float(p25), float(p75)


@dataclass
class SelectorRow:
    """One selector on the user's queries, keys and values (lists hold one entry per query)."""

    selector: str
    params: dict[str, Any]
    weights: np.ndarray  # (m, n)
    outputs: np.ndarray  # (m, d_v)
    entropy: np.ndarray  # (m,)
    support: np.ndarray  # (m,) support sizes
    max_weight: np.ndarray  # (m,)
    grad_norm_query: float
    grad_norm_keys: float
    gradient: str  # exact | zero | surrogate
    cost_us: float
    cost_spread_us: tuple[float, float]  # 25th and 75th percentile

    def to_dict(self) -> dict[str, Any]:
        return {
            "selector": self.selector, "params": self.params,
            "weights": self.weights.tolist(), "outputs": self.outputs.tolist(),
            "entropy": self.entropy.tolist(), "support": self.support.tolist(),
            "max_weight": self.max_weight.tolist(),
            "grad_norm_query": self.grad_norm_query, "grad_norm_keys": self.grad_norm_keys,
            "gradient": self.gradient, "cost_us": self.cost_us,
            "cost_spread_us": list(self.cost_spread_us),
        }


def compare_row(name: str, Q: np.ndarray, K: np.ndarray, V: np.ndarray, scale: float,
                params: Mapping[str, Any], upstream: np.ndarray,
                repeats: int = COST_REPEATS) -> SelectorRow:
    """Everything about selector ``name`` on these inputs, as ``seqtool attend`` computes it.

    ``params`` may hold parameters for every selector; ``name`` gets the ones it reads.
    """
    used = resolve_params(name, K.shape[0], params)
    forward = attend(Q, K, V, name, scale, **used)
    grads = attend_backward(Q, K, V, forward, np.broadcast_to(upstream, forward.outputs.shape),
                            scale)
    median, p25, p75 = time_call(lambda: attend(Q, K, V, name, scale, **used), repeats)
    w = forward.weights
    return SelectorRow(
        selector=name, params=used, weights=w, outputs=forward.outputs, entropy=entropy(w),
        support=(w > 0).sum(axis=-1), max_weight=w.max(axis=-1),
        grad_norm_query=float(np.linalg.norm(grads.query)),
        grad_norm_keys=float(np.linalg.norm(grads.keys)),
        gradient=forward.selection.gradient, cost_us=median, cost_spread_us=(p25, p75),
    )


@dataclass
class CostRow:
    """Cost per call for one selector and one number of keys n (d-dimensional)."""

    selector: str
    n: int
    scores_us: float  # S = scale · q Kᵀ
    select_us: float  # w = selector(S)
    select_spread_us: tuple[float, float]
    ratio_to_argmax: float  # select_us / argmax's select_us at the same n

    def to_dict(self) -> dict[str, Any]:
        return {"selector": self.selector, "n": self.n, "scores_us": self.scores_us,
                "select_us": self.select_us, "select_spread_us": list(self.select_spread_us),
                "ratio_to_argmax": self.ratio_to_argmax}


def measure_cost(selectors: Sequence[str], sizes: Sequence[int], dim: int,
                 params: Mapping[str, Any] | None = None, seed: int = 0,
                 repeats: int = COST_REPEATS) -> list[CostRow]:
    """Time scores and selection separately for one query over n random keys, per size."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        q = rng.normal(size=(1, dim))
        K = rng.normal(size=(n, dim))
        scale = 1.0 / np.sqrt(dim)
        scores_us, _, _ = time_call(lambda: attention_scores(q, K, scale), repeats)
        S = attention_scores(q, K, scale)
        timed = {}
        for name in dict.fromkeys(["argmax", *selectors]):
            used = resolve_params(name, n, params)
            timed[name] = time_call(lambda: select(name, S, **used), repeats)
        for name in selectors:
            median, p25, p75 = timed[name]
            rows.append(CostRow(name, n, scores_us, median, (p25, p75),
                                median / timed["argmax"][0]))
    return rows


ROW_COLUMNS = ("selector", "query", "entropy", "support", "max_weight", "grad_norm_query",
               "grad_norm_keys", "gradient", "cost_us", "cost_p25_us", "cost_p75_us")
LEARN_COLUMNS = ("loss_start", "loss_end", "accuracy", "accuracy_at_init", "grad_norm_Wq",
                 "grad_norm_Wk")


@dataclass
class CompareReport(Report):
    """Everything `seqtool compare-selectors` measured; ``to_dict`` is its JSON form."""

    example: bool
    scale: float
    queries: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    upstream: np.ndarray
    selector_rows: list[SelectorRow]
    cost: list[CostRow] = field(default_factory=list)
    cost_dim: int | None = None
    learning: list[LearningResult] = field(default_factory=list)
    learning_setup: RecallSetup | None = None

    def row(self, name: str) -> SelectorRow | None:
        return next((r for r in self.selector_rows if r.selector == name), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "example": self.example, "scale": self.scale, "queries": self.queries.tolist(),
            "keys": self.keys.tolist(), "values": self.values.tolist(),
            "upstream": self.upstream.tolist(), "rows": [r.to_dict() for r in self.selector_rows],
            "cost": [c.to_dict() for c in self.cost],
            "learning": [r.to_dict() for r in self.learning],
        }
        if self.cost:
            out["cost_dim"] = self.cost_dim
        if self.learning_setup is not None:
            out["learning_setup"] = dict(vars(self.learning_setup))
        return out

    def columns(self) -> list[str]:
        """The CSV header: the keys of every row of :meth:`rows`, in order."""
        sizes = sorted({c.n for c in self.cost})
        learned = list(LEARN_COLUMNS) if self.learning else []
        return [*ROW_COLUMNS, *(f"select_us_n{n}" for n in sizes), *learned]

    def rows(self) -> list[dict[str, Any]]:
        """The CSV form: one row per (selector, query); with a cost table a select_us_n<N>
        column per size, with a learning run its numbers (per selector, repeated per query)."""
        sizes = sorted({c.n for c in self.cost})
        cost = {(c.selector, c.n): c.select_us for c in self.cost}
        learned = {r.selector: r for r in self.learning}
        out = []
        for row in self.selector_rows:
            extra = {f"select_us_n{n}": cost[(row.selector, n)] for n in sizes}
            if self.learning:
                extra.update({c: getattr(learned[row.selector], c) for c in LEARN_COLUMNS})
            for j in range(len(row.entropy)):
                out.append({
                    "selector": row.selector, "query": j, "entropy": float(row.entropy[j]),
                    "support": int(row.support[j]), "max_weight": float(row.max_weight[j]),
                    "grad_norm_query": row.grad_norm_query, "grad_norm_keys": row.grad_norm_keys,
                    "gradient": row.gradient, "cost_us": row.cost_us,
                    "cost_p25_us": row.cost_spread_us[0], "cost_p75_us": row.cost_spread_us[1],
                    **extra,
                })
        return out


def compare_report(
    Q: np.ndarray,
    K: np.ndarray,
    V: np.ndarray,
    *,
    selectors: Sequence[str],
    params: Mapping[str, Any] | None = None,
    scale: float | str = 1.0,
    upstream: np.ndarray | None = None,
    repeats: int = COST_REPEATS,
    cost_sizes: Sequence[int] | None = None,
    cost_dim: int = 64,
    cost_seed: int = 0,
    learning: RecallSetup | None = None,
    example: bool = False,
    on_learn_step: Callable[[str, int, float], None] | None = None,
) -> CompareReport:
    """Every selector in ``selectors`` on Q (m, d), K (n, d), V (n, d_v), side by side.

    ``params``: selector parameters by name, shared by every selector (each reads its own;
    None or missing: the default). ``upstream``: ∂L/∂O for the gradient norms, (d_v,), ones
    by default. ``repeats``: timing repeats per measurement. ``cost_sizes``: numbers of keys
    for the cost table (None: no table), with ``cost_dim``-dimensional random keys drawn from
    ``cost_seed``. ``learning``: the associative-recall run, if wanted; ``on_learn_step(name,
    step, loss)`` follows it. ``example`` marks the built-in worked example.
    """
    Q, K, V = (np.asarray(a, dtype=np.float64) for a in (Q, K, V))
    scale_value = resolve_scale(scale, Q.shape[1])
    u = np.ones(V.shape[1]) if upstream is None else upstream
    report = CompareReport(
        example=example, scale=scale_value, queries=Q, keys=K, values=V, upstream=u,
        selector_rows=[compare_row(name, Q, K, V, scale_value, params or {}, u, repeats)
                       for name in selectors],
    )
    if cost_sizes is not None:
        report.cost = measure_cost(selectors, cost_sizes, cost_dim, params, cost_seed, repeats)
        report.cost_dim = cost_dim
    if learning is not None:
        report.learning_setup = learning
        for name in selectors:
            callback = None
            if on_learn_step is not None:
                callback = (lambda step, loss, name=name: on_learn_step(name, step, loss))
            used = resolve_params(name, learning.pairs, params)
            report.learning.append(learn(name, learning, used, callback))
    return report
