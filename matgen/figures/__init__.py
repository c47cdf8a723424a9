"""One function per paper figure or table; PNG + PDF, with the CSV it is drawn from beside it."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window on a cluster node

import matplotlib.pyplot as plt  # noqa: E402

from ..io import atomic_path  # noqa: E402


def use_style() -> None:
    """Seaborn's paper style with a colour-blind-safe palette."""
    import seaborn as sns

    sns.set_theme(context="paper", style="ticks", palette="colorblind", font_scale=1.1)


UNIT_LABELS = {"um": "µm", "nm": "nm", "mm": "mm", "angstrom": "Å", "A": "Å"}


def unit_label(unit: str) -> str:
    """How a config's length unit (``um``, ``angstrom``, ...) is printed on an axis."""
    return UNIT_LABELS.get(unit, unit)


def show_image(ax: "plt.Axes", image, title: str = "", fontsize: float = 8) -> None:
    """A grey image in [0, 1] on ``ax`` without ticks, pixels as squares, with a small title."""
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)


def save_figure(fig: "plt.Figure", png_path: str | os.PathLike, dpi: int = 150) -> None:
    """Save ``fig`` as PNG at ``png_path`` and as PDF beside it, atomically; close it."""
    png_path = Path(png_path)
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    with atomic_path(png_path.with_suffix(".pdf"), suffix=".pdf") as tmp:
        fig.savefig(tmp, bbox_inches="tight", format="pdf")
    plt.close(fig)


def draw_table(
    ax: "plt.Axes",
    cells: list[list[str]],
    col_labels: list[str],
    *,
    fontsize: float = 8.5,
    row_scale: float = 1.6,
    header_scale: float = 1.8,
    col_widths: list[float] | None = None,
) -> None:
    """A rendered table of strings on ``ax`` (axis hidden), header row taller and bold."""
    ax.axis("off")
    t = ax.table(
        cellText=cells, colLabels=col_labels, loc="center", cellLoc="center", colWidths=col_widths
    )
    t.auto_set_font_size(False)
    t.set_fontsize(fontsize)
    t.scale(1, row_scale)
    for (row, _), cell in t.get_celld().items():
        if row == 0:
            cell.set_height(cell.get_height() * header_scale)
            cell.set_text_props(weight="bold")
