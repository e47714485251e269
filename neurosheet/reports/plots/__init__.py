"""Figures for every stage (matplotlib, headless). Each function takes data and returns a Figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from neurosheet.core.io import write_with


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save ``fig`` atomically; the format follows the file extension (png, pdf, svg)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    write_with(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight"))
    plt.close(fig)
    return path
