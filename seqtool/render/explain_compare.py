"""`seqtool compare-selectors --explain`: the classic claims about argmax attention, each one
stated with the number from this run that backs it (or the number that contradicts it)."""

from __future__ import annotations

from seqtool.core.compare import CompareReport
from seqtool.render.numbers import fmt, vec


def _simpler_and_cheaper(report: CompareReport, p: int) -> list[str]:
    arg, soft = report.row("argmax"), report.row("softmax")
    lines = [f"- Per call on these inputs: argmax {arg.cost_us:.1f} µs, softmax "
             f"{soft.cost_us:.1f} µs (whole forward pass, median; at this size Python's call "
             "overhead dominates)."]
    largest = max((c.n for c in report.cost), default=None)
    if largest is not None:
        cost = {(c.selector, c.n): c for c in report.cost if c.n == largest}
        if ("softmax", largest) in cost:
            ratio = cost[("softmax", largest)].ratio_to_argmax
            verdict = "cheaper" if ratio > 1 else "not cheaper"
            lines.append(
                f"- Cheaper? At n = {largest} keys the selection takes {fmt(cost[('argmax', largest)].select_us, p)}"
                f" µs for argmax and {fmt(cost[('softmax', largest)].select_us, p)} µs for softmax: "
                f"argmax is {verdict} (softmax/argmax = {ratio:.2g}); computing the scores "
                f"q·K costs {fmt(cost[('argmax', largest)].scores_us, p)} µs for both, so the "
                "saving is at most the selection step.")
    else:
        lines.append("- (Run with --cost to see how the cost grows with the number of keys.)")
    return lines


def _focus_and_information(report: CompareReport, p: int) -> list[str]:
    arg, soft = report.row("argmax"), report.row("softmax")
    lost = 1.0 - soft.weights[0][arg.weights[0] > 0].sum()
    return [
        f"- Focus: argmax puts weight {fmt(arg.max_weight[0], p)} on one key (entropy "
        f"{fmt(arg.entropy[0], p)} nats, support {int(arg.support[0])}); softmax puts "
        f"{fmt(soft.max_weight[0], p)} on its top key (entropy {fmt(soft.entropy[0], p)} nats, "
        f"support {int(soft.support[0])}).",
        f"- Information: argmax's output {vec(arg.outputs[0], p)} ignores every other key; "
        f"softmax gives them {fmt(lost, p)} of the weight and outputs {vec(soft.outputs[0], p)}.",
    ]


def _gradients(report: CompareReport, p: int) -> list[str]:
    arg, soft = report.row("argmax"), report.row("softmax")
    lines = [
        f"- Gradient: ‖∂o/∂q‖ = {fmt(arg.grad_norm_query, p)} and ‖∂o/∂K‖ = "
        f"{fmt(arg.grad_norm_keys, p)} for argmax (its Jacobian is zero wherever it is "
        f"defined), against {fmt(soft.grad_norm_query, p)} and {fmt(soft.grad_norm_keys, p)} "
        "for softmax.",
    ]
    flat = [r.selector for r in report.selector_rows
            if r.gradient == "exact" and r.grad_norm_query == 0 and r.grad_norm_keys == 0]
    if flat:
        lines.append(
            f"- Not only argmax: {', '.join(flat)} also pass no gradient here, since on these "
            "scores their support is a single key and they are locally constant; unlike "
            "argmax, they pass one as soon as two keys share the weight.")
    st = report.row("st-argmax")
    if st is not None:
        lines.append(
            f"- A way around it: st-argmax keeps argmax's forward pass (output "
            f"{vec(st.outputs[0], p)}) and borrows softmax's backward pass (‖∂o/∂q‖ = "
            f"{fmt(st.grad_norm_query, p)}, a surrogate, not the true gradient).")
    return lines


def _learning(report: CompareReport, p: int) -> list[str]:
    runs = {r.selector: r for r in report.learning}
    if "argmax" not in runs or "softmax" not in runs:
        return ["- (Run with --learn, including softmax and argmax, to see what the missing "
                "gradient does to learning.)"]
    arg, soft = runs["argmax"], runs["softmax"]
    lines = [
        f"- Learning keys and queries: after {report.learning_setup.steps} steps softmax "
        f"reaches {soft.accuracy:.1%} held-out accuracy (loss {fmt(soft.loss_start, p)} → "
        f"{fmt(soft.loss_end, p)}, Σ‖∂L/∂W_q‖ = {fmt(soft.grad_norm_Wq, p)}); argmax stays at "
        f"{arg.accuracy:.1%}, exactly its untrained {arg.accuracy_at_init:.1%} (chance "
        f"{arg.chance:.1%}), because Σ‖∂L/∂W_q‖ = {fmt(arg.grad_norm_Wq, p)} and "
        f"Σ‖∂L/∂W_k‖ = {fmt(arg.grad_norm_Wk, p)}: W_q and W_k "
        f"{'never changed' if not arg.weights_changed else 'changed'}.",
    ]
    others = [r for name, r in runs.items() if name not in ("argmax", "softmax")]
    if others:
        lines.append("- The others: " + "; ".join(
            f"{r.selector} {r.accuracy:.1%}" for r in others) + ".")
    return lines


def explain_compare(report: CompareReport, precision: int = 4) -> list[str]:
    """The trade-off in prose; claims about selectors not in the run are left out."""
    have = {r.selector for r in report.selector_rows}
    if not {"argmax", "softmax"} <= have:
        return ["The argmax-versus-softmax trade-off needs both in --selectors."]
    lines = ["Argmax instead of softmax in attention, claim by claim, on this run's numbers:"]
    for part in (_simpler_and_cheaper, _focus_and_information, _gradients, _learning):
        lines += part(report, precision)
    return lines
