"""One matplotlib set-up for every figure rewarm draws (report, demo, schedules, laws).

Figures are `matplotlib.figure.Figure` objects built directly, not through
`pyplot`: no backend is selected, no global figure registry fills up, nothing needs
closing, and nothing works differently on a machine without a display. Importing
this module imports no matplotlib and changes no setting; a style applies only to
the figures drawn and saved inside `with style(REPORT_STYLE):`
(`matplotlib.rc_context`), so one figure's look never leaks into another's.
`save` renders to memory and writes through `rewarm.atomic`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewarm import atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_STYLE: dict[str, Any] = {
    "figure.dpi": 110,
    "savefig.dpi": 130,
    "font.size": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.titleweight": "bold",
    "axes.titlesize": 10.5,
    "legend.frameon": False,
    "svg.fonttype": "none",
}
"""The look of the report's and the demo's figures (light grid, no top/right spines,
text kept as text in SVG)."""


@contextlib.contextmanager
def style(rc: Mapping[str, Any]) -> Iterator[None]:
    """Apply the matplotlib settings `rc` to figures created and saved inside; restore after."""
    import matplotlib

    # matplotlib types the keys as a Literal of its setting names; `rc`'s are such names.
    with matplotlib.rc_context(dict(rc)):  # type: ignore[arg-type]
        yield


def figure(**kwargs: Any) -> Figure:
    """A new figure (`Figure(**kwargs)`: figsize, dpi, ...) in the current style."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    dpi: float | None = None,
    **kwargs: Any,
) -> tuple[Figure, Any]:
    """`(figure, axes)` as `pyplot.subplots` returns them, without pyplot."""
    fig = figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save(fig: Figure, path: str | Path, *, format: str, **savefig: Any) -> Path:
    """Render `fig` as `format` (png, svg, pdf) and write it to `path` atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format=format, **savefig)
    return atomic.write_bytes(path, buf.getvalue())
