"""Pictures of what the commands compute: `--plot FILE` and `seqtool report`.

matplotlib is an optional extra (``pip install -e '.[plot]'``) and is imported only here,
only when a picture is asked for, so that ``seqtool attend`` starts as fast without it.
Each command's plot is a function of its report's ``to_dict()`` (the dict a recipe keeps as
``report.json``): ``plot(data) -> matplotlib.figure.Figure``, named by the command registry
(``Command.plot``), so that ``--plot``, recipes and ``seqtool report`` draw the same picture
from the same numbers. :func:`encode` gives its bytes by the file's extension:

    .png  .svg  .pdf   matplotlib's own writers (SVG and PDF without dates or random ids:
                       the same run gives the same file)
    .html              one self-contained page: the figure as inline SVG, no script, no
                       network access

Figures are made without pyplot (no global state, no GUI backend); colours come from
:data:`PALETTE` (Okabe & Ito's, distinct for the common colour blindnesses and in
greyscale by lightness) and heatmaps use viridis.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path
from typing import Any

from seqtool.core.errors import InputError

FORMATS = (".png", ".svg", ".pdf", ".html")
EXTRA = "pip install 'seqtool[plot]'  (or: pip install matplotlib)"
# Okabe & Ito (2008): black, orange, sky blue, bluish green, yellow, blue, vermillion,
# reddish purple; told apart with any common colour vision deficiency
PALETTE = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00",
           "#CC79A7")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # a second cue beside the colour
HEATMAP = "viridis"
SVG_SALT = "seqtool"  # fixed ids in SVG output: deterministic files


def check_plot_path(value: str, key: str = "plot") -> Path:
    """The path of a picture to write, checked before any work: a known extension, a folder
    that exists, not a folder itself, and matplotlib installed."""
    path = Path(value)
    if path.suffix.lower() not in FORMATS:
        raise InputError(key, f"is {value!r}; the extension chooses the format, one of "
                         f"{', '.join(FORMATS)}")
    if path.is_dir():
        raise InputError(key, f"is {value}, a folder; give a file name such as "
                         f"{path / ('plot' + FORMATS[1])}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(key, f"is {value}, in a folder that does not exist ({parent})")
    require_matplotlib(key)
    return path


def require_matplotlib(key: str = "plot") -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(key, f"needs matplotlib, which is not installed: {EXTRA}") from None


def figure(width: float = 7.0, height: float = 4.5, **kwargs: Any):
    """A new Figure (no pyplot) with constrained layout and seqtool's style."""
    require_matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained", **kwargs)
    return fig


def style(ax: Any, title: str, xlabel: str, ylabel: str, legend: bool = False) -> None:
    """Title and labelled axes (units in the labels), light grid, legend when asked."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    if legend:
        ax.legend(frameon=False, fontsize="small")


def color(i: int) -> str:
    """The i-th categorical colour (black first, so one line is black)."""
    return PALETTE[i % len(PALETTE)]


def svg_text(fig: Any) -> str:
    """The figure as SVG text, deterministic (no date, fixed ids)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # without the XML prolog, to sit inside HTML


def inline_svg(fig: Any, prefix: str) -> str:
    """The figure as an <svg> element for an HTML page: without matplotlib's metadata and
    namespace declarations (HTML needs none, and the page then names no URL at all),
    ``xlink:href`` as ``href``, and every id prefixed with ``prefix`` so that several
    figures on one page never share one."""
    text = svg_text(fig)
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    head_end = text.index(">")
    head = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text[:head_end])
    text = head + text[head_end:]
    text = text.replace("xlink:href=", "href=")
    text = text.replace(' id="', f' id="{prefix}-').replace('href="#', f'href="#{prefix}-')
    return text.replace("url(#", f"url(#{prefix}-")


def html_page(title: str, body: str) -> str:
    """A self-contained page: inline CSS, no script, nothing fetched."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")


CSS = ("body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;"
       "max-width:70rem;padding:0 1rem;color:#111;background:#fff}"
       "h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}"
       "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}"
       "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}"
       "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}"
       "svg{max-width:100%;height:auto}figure{margin:1rem 0}")


def encode(fig: Any, suffix: str, title: str = "seqtool") -> bytes:
    """The bytes of ``fig`` in the format ``suffix`` names (see the module docstring); the
    CLI writes them (atomically, as every seqtool file)."""
    suffix = suffix.lower()
    if suffix == ".html":
        body = f"<h1>{html.escape(title)}</h1>\n<figure>{inline_svg(fig, 'plot')}</figure>"
        return html_page(title, body).encode("utf-8")
    if suffix == ".svg":
        return svg_text(fig).encode("utf-8")
    buffer = io.BytesIO()
    metadata = {"CreationDate": None} if suffix == ".pdf" else {"Software": None}
    fig.savefig(buffer, format=suffix[1:], metadata=metadata, dpi=150)
    return buffer.getvalue()


__all__ = ["EXTRA", "FORMATS", "HEATMAP", "MARKERS", "PALETTE", "check_plot_path", "color",
           "encode", "figure", "html_page", "inline_svg", "require_matplotlib", "style",
           "svg_text"]
