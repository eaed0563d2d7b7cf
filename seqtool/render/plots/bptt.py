"""The picture of `seqtool bptt`, drawn from its report's ``to_dict()``.

Three panels:
    ‖∂h_T/∂h_k‖ against k (log axis), with the report's rate per step back as a dashed line
        rate^(T−k) (the LSTM's cell path ‖∂c_T/∂c_k‖ dotted): the vanishing or exploding slope
    ‖∂L/∂h_t‖ against t (log axis), with a straight-line fit of log‖∂L/∂h_t‖ on t
        (np.polyfit; the report has no rate for it) and the rate it gives
    each step's share of ∂L/∂W_hh (∂L/∂weight_hh for the gated cells) as bars of its norm
With ``--cell rnn,gru,lstm`` (a report with ``reports``, one per cell) every cell is on the
same axes, one colour and marker each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqtool.render.plots import MARKERS, color, figure, style

SHARE_LOG_RANGE = 1e3  # shares spanning more than this (largest / smallest > 0): log axis
JACOBIAN = r"$\|\partial h_T/\partial h_k\|$"  # mathtext, as the panels write them
CELL_PATH = r"$\|\partial c_T/\partial c_k\|$"
GRADIENT = r"$\|\partial L/\partial h_t\|$"


def parts(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each cell's report: the cells side by side, or the one report itself."""
    return list(data["reports"]) if "reports" in data else [data]


def cell_of(part: dict[str, Any]) -> str:
    return part.get("cell", "rnn")


def _every(n: int) -> int:
    """A marker every this many points: about 25 markers on a line however long."""
    return max(1, n // 25)


def _positive(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The points a log axis can show (y > 0 and finite), and how many were left out."""
    keep = np.isfinite(y) & (y > 0)
    return x[keep], y[keep], int((~keep).sum())


def fitted_rate(t: np.ndarray, norms: np.ndarray) -> tuple[float, float] | None:
    """(a, b) of log‖·‖ ≈ a + b·t by least squares over the positive norms (np.polyfit);
    None with fewer than two of them. exp(−b) is the change per step back."""
    t, y, _ = _positive(np.asarray(t, float), np.asarray(norms, float))
    if len(t) < 2:
        return None
    b, a = np.polyfit(t, np.log(y), 1)
    return float(a), float(b)


def _array(values: Any) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def plot(data: dict[str, Any]):
    """The figure of a `seqtool bptt` report dict (see the module docstring)."""
    cells = parts(data)
    several = len(cells) > 1
    fig = figure(11.0, 9.5)
    axes = fig.subplot_mosaic([["jacobian", "gradient"], ["shares", "shares"]],
                              height_ratios=[1.3, 1.0])
    T = int(cells[0]["shapes"]["T"])
    for name, draw in (("jacobian", _jacobian_panel), ("gradient", _gradient_panel)):
        omitted = draw(axes[name], cells, several, T)
        if omitted:
            axes[name].annotate(f"{omitted} norm(s) of 0 not drawn (log axis)", (0.01, 0.01),
                                xycoords="axes fraction", fontsize="x-small", color="0.3")
    _share_panel(axes["shares"], cells, several)
    fig.suptitle(_title(cells, several, T))
    return fig


def _title(cells: list[dict[str, Any]], several: bool, T: int) -> str:
    first = cells[0]
    shapes = first["shapes"]
    sizes = f"T = {T}, D = {shapes['D']}, H = {shapes['H']}, O = {shapes['O']}"
    where = "every step" if first.get("target_at") == "all" else "the last step"
    loss = f"{first.get('loss_name', 'mse')} loss at {where}"
    if several:
        verdicts = f"{JACOBIAN} going back in time: " + ", ".join(
            f"{cell_of(p)} {p['jacobian_norms']['verdict']}" for p in cells)
        names = ", ".join(cell_of(p) for p in cells)
        return f"seqtool bptt: {names} side by side ({sizes}; {loss})\n{verdicts}"
    name = (f"vanilla RNN (f = {first.get('activation', 'tanh')})" if cell_of(first) == "rnn"
            else cell_of(first).upper())
    return (f"seqtool bptt: {name}, {sizes}; {loss}\n"
            f"the Jacobian chain {JACOBIAN} is {first['jacobian_norms']['verdict']} going back "
            "in time")


def _legend(ax: Any, handles: list[Any]) -> None:
    """The legend under the axes (the lines run corner to corner: inside, it would cover
    some of them)."""
    ax.legend(handles=handles, fontsize="small", frameon=False, loc="upper center",
              bbox_to_anchor=(0.5, -0.16), ncols=1)


def _key(style: str, text: str) -> Any:
    """A grey legend entry explaining a line style shared by every cell."""
    from matplotlib.lines import Line2D

    return Line2D([], [], color="0.45", linestyle=style, linewidth=1.2, label=text)


def log_ticks(ax: Any) -> None:
    """A log y axis whose values span less than two decades gets plain numbers (0.2, 0.5,
    1, 2; more of them within one decade) instead of a bare 10⁰ and 6×10⁻¹ labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    low, high = ax.get_ylim()
    if low > 0 and high / low < 100:
        subs = (1.0, 2.0, 5.0) if high / low > 10 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _jacobian_panel(ax: Any, cells: list[dict[str, Any]], several: bool, T: int) -> int:
    ax.set_yscale("log")
    omitted, handles, dotted = 0, [], False
    for i, part in enumerate(cells):
        jn = part["jacobian_norms"]
        k = np.asarray(jn["k"], dtype=float)
        x, y, left = _positive(k, _array(jn["norms"]))
        omitted += left
        rate = jn.get("rate_per_step")
        said = (f"×{rate:.3g} per step back, {jn['verdict']}" if rate
                else f"{jn['verdict']}: " + r"$\|\partial h_T/\partial h_0\| = 0$")
        label = f"{cell_of(part)}: {said}" if several else f"{JACOBIAN}  ({said})"
        line, = ax.plot(x, y, color=color(i), marker=MARKERS[i % len(MARKERS)], markersize=5,
                        markevery=_every(len(x)), linewidth=1.6, label=label)
        handles.append(line)
        if rate is not None and rate > 0:
            ax.plot(k, rate ** (T - k), color=color(i), linestyle="--", linewidth=1.0)
        if jn.get("cell_norms") is not None:  # the LSTM's cell path
            x, y, left = _positive(k, _array(jn["cell_norms"]))
            omitted += left
            cell_line, = ax.plot(x, y, color=color(i), linestyle=":", linewidth=1.8,
                                 label=f"{cell_of(part)}: {CELL_PATH} (the cell path)")
            dotted = True
            handles.append(cell_line)
    if any(part["jacobian_norms"].get("rate_per_step") for part in cells):
        handles.append(_key("--", r"rate$^{T-k}$: the report's rate per step, "
                                  r"$\|\partial h_T/\partial h_0\|^{1/T}$"))
    ax.set_xlim(-0.02 * T - 0.3, 1.02 * T + 0.3)  # every k, drawn or not (zeros)
    style(ax, f"{JACOBIAN}: how much step k still reaches the last state",
          f"k (time step; T = {T})", "spectral norm (log scale)")
    if dotted and not several:
        ax.set_title(f"{JACOBIAN} and {CELL_PATH}: what step k still reaches at T")
    log_ticks(ax)
    _legend(ax, handles)
    return omitted


def _gradient_panel(ax: Any, cells: list[dict[str, Any]], several: bool, T: int) -> int:
    ax.set_yscale("log")
    omitted, handles = 0, []
    for i, part in enumerate(cells):
        norms = _array(part["dL_dh"])
        t = np.arange(len(norms), dtype=float)
        x, y, left = _positive(t, norms)
        omitted += left
        fit = fitted_rate(t, norms)
        said = "" if fit is None else f"fit ×{np.exp(-fit[1]):.3g} per step back"
        label = (f"{cell_of(part)}: {said}" if several
                 else f"{GRADIENT}" + (f"  ({said})" if said else ""))
        line, = ax.plot(x, y, color=color(i), marker=MARKERS[i % len(MARKERS)], markersize=5,
                        markevery=_every(len(x)), linewidth=1.6, label=label)
        handles.append(line)
        if fit is not None:
            a, b = fit
            ax.plot(t, np.exp(a + b * t), color=color(i), linestyle="--", linewidth=1.0)
    handles.append(_key("--", "least-squares line of log-norm on t (np.polyfit)"))
    ax.set_xlim(-0.02 * T - 0.3, 1.02 * T + 0.3)
    style(ax, f"{GRADIENT}: the whole gradient reaching each state",
          f"t (time step; T = {T})", "Euclidean norm (log scale)")
    log_ticks(ax)
    _legend(ax, handles)
    return omitted


def _share_panel(ax: Any, cells: list[dict[str, Any]], several: bool) -> None:
    gated = ["gates" in part for part in cells]
    if not any(gated):
        weight, share = r"$\partial L/\partial W_{hh}$", r"$\|dz_t\, h_{t-1}^\top\|_F$"
    elif all(gated):
        weight, share = r"$\partial L/\partial$weight_hh", r"$\|dA_t\, h_{t-1}^\top\|_F$"
    else:  # the vanilla cell beside gated ones
        weight, share = r"$\partial L/\partial W_{hh}$ (weight_hh)", r"$\|$step t's share$\|_F$"
    width = 0.8 / len(cells)
    everything = []
    for i, part in enumerate(cells):
        t = np.array([s["t"] for s in part["per_step"]], dtype=float)
        norms = _array([s["norm"] for s in part["per_step"]])
        everything.append(norms)
        offset = (i - (len(cells) - 1) / 2) * width
        ax.bar(t + offset, norms, width=width, color=color(i) if several else color(5),
               edgecolor="white", linewidth=0.3, label=cell_of(part))
    values = np.concatenate(everything)
    positive = values[np.isfinite(values) & (values > 0)]
    log = bool(len(positive) and positive.max() / positive.min() > SHARE_LOG_RANGE)
    if log:
        ax.set_yscale("log")
    style(ax, f"each step's share of {weight} (the shares sum to it){_zeros(cells)}",
          "t (time step)", share + (" (log scale)" if log else ""), legend=several)
    if len(cells[0]["per_step"]) <= 30:
        ax.set_xticks([s["t"] for s in cells[0]["per_step"]])


def _zeros(cells: list[dict[str, Any]]) -> str:
    """The steps whose share is 0 in every cell, said (a bar of height 0 is easily missed):
    step 1's is 0 whenever h_0 = 0, as in a generated problem."""
    zero = [int(s["t"]) for s in cells[0]["per_step"]
            if all(part["per_step"][int(s["t"]) - 1]["norm"] == 0 for part in cells)]
    if not zero:
        return ""
    h0 = [np.asarray((part.get("problem") or {}).get("h0", [1.0]), float) for part in cells]
    if zero == [1] and all(not v.any() for v in h0):
        return r"; 0 at t = 1, where $h_0 = 0$"
    more = ", …" if len(zero) > 6 else ""
    return f"; 0 at t = {', '.join(map(str, zero[:6]))}{more}"


__all__ = ["fitted_rate", "parts", "plot"]
