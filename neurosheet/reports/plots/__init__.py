"""Figures for every stage (matplotlib, headless). Each function takes data and returns a Figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_with
from neurosheet.core.paths import check_writable_file

#: file types a figure is saved as (matplotlib's, by extension; no extension means png)
FORMATS: tuple[str, ...] = ("png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif",
                            "tiff", "webp", "pgf", "raw", "rgba")


def check_figure_path(path: str | Path, param: str = "plot") -> Path:
    """A figure can be saved at ``path`` (a known format, a writable file): checked before work."""
    path = check_writable_file(path, param, "figure file")
    fmt = path.suffix.lstrip(".").lower()
    if fmt and fmt not in FORMATS:
        raise NeurosheetError(f"figure file {path}: unknown format '.{fmt}'; use .png, .pdf or "
                              ".svg", param)
    return path


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save ``fig`` atomically; the format follows the file extension (png, pdf, svg)."""
    import matplotlib.pyplot as plt

    path = check_figure_path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    write_with(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight"))
    plt.close(fig)
    return path
