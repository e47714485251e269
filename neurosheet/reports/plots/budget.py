"""Budget charts: usage against each limit of one target, and a comparison across targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neurosheet.reports.plots import matplotlib  # noqa: F401  (Agg backend set there)


def usage_ratios(report: dict[str, Any]) -> list[tuple[str, float, bool]]:
    """(check name, used / limit, ok) for every numeric check of a report."""
    out = []
    for c in report["checks"]:
        used, limit = c["used"], c["limit"]
        if isinstance(used, int | float) and isinstance(limit, int | float) and limit > 0:
            out.append((c["name"], float(used) / float(limit), bool(c["ok"])))
    return out


def usage_figure(report: dict[str, Any]) -> Any:
    """Left: used / limit per check (1 = at the limit). Right: crossing edges, tiling vs random."""
    import matplotlib.pyplot as plt

    ratios = usage_ratios(report)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 0.45 * max(len(ratios), 4) + 1.6),
                                  gridspec_kw={"width_ratios": [3, 1.3]})
    if ratios:
        names = [r[0] for r in ratios][::-1]
        vals = np.array([r[1] for r in ratios])[::-1]
        colors = ["tab:green" if ok else "tab:red" for _, _, ok in ratios][::-1]
        y = np.arange(len(names))
        ax.barh(y, vals, color=colors)
        ax.set_yticks(y, names, fontsize=8)
        ax.axvline(1.0, color="k", lw=1, ls="--")
        if vals.max() / max(vals[vals > 0].min(initial=1.0), 1e-9) > 50:
            ax.set_xscale("log")
        for yi, v in zip(y, vals, strict=True):
            ax.text(v, yi, f" {v:.2g}", va="center", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no numeric limits checked", ha="center", transform=ax.transAxes)
    ax.set_xlabel("used / limit")
    t = report["target"]
    ax.set_title(f"{t['title']}: {report['verdict']['text']}", fontsize=9)
    parts = report.get("partitions")
    if parts:
        fr = [parts["tiling"]["crossing_fraction"], parts["random"]["crossing_fraction"]]
        title = f"edges crossing cores ({parts['tiling']['cores']} cores)"
        if "probe" in parts:
            probe = parts["probe"]
            fr = [probe["tiling_crossing_fraction"], probe["random_crossing_fraction"]]
            title = f"edges crossing {probe['cores']} tiles (probe: fits 1 core)"
        ax2.bar(["sheet tiling", "random"], fr, color=["tab:blue", "tab:gray"])
        for i, v in enumerate(fr):
            ax2.text(i, v, f"{100 * v:.1f}%", ha="center", va="bottom", fontsize=8)
        ax2.set_ylim(0, max(max(fr) * 1.2, 0.05))
        ax2.set_title(title, fontsize=9)
    else:
        ax2.text(0.5, 0.5, "no partition", ha="center", transform=ax2.transAxes)
        ax2.set_axis_off()
    fig.tight_layout()
    return fig


def comparison_figure(reports: Sequence[dict[str, Any]]) -> Any:
    """Across targets: worst usage / limit and cores needed (fits green, does not fit red)."""
    import matplotlib.pyplot as plt

    names = [r["target"]["name"] for r in reports]
    worst = []
    for r in reports:
        ratios = [v for _, v, _ in usage_ratios(r)]
        worst.append(max(ratios) if ratios else np.nan)
    cores = [(r.get("cores") or {}).get("needed") or np.nan for r in reports]
    colors = ["tab:green" if r["verdict"]["fits"] else "tab:red" for r in reports]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 0.4 * len(reports) + 1.8), sharey=True)
    y = np.arange(len(names))
    ax.barh(y, np.nan_to_num(worst, nan=0.0), color=colors)
    ax.axvline(1.0, color="k", lw=1, ls="--")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    finite = [w for w in worst if np.isfinite(w) and w > 0]
    ax.set_xlim(left=min([0.05, *[0.5 * w for w in finite]]))
    ax.set_xlabel("worst used / limit (log)")
    for yi, r in zip(y, reports, strict=True):
        if not r["verdict"]["fits"]:
            why = r["verdict"]["first_broken"]
            if why == "recurrent sheet supported":
                why = "layer-structured: no recurrent sheet"
            ax.text(ax.get_xlim()[0], yi, " " + why, va="center", fontsize=7)
    ax2.barh(y, np.nan_to_num(cores, nan=0.0), color=colors)
    ax2.set_xscale("log")
    ax2.set_xlabel("cores needed (sheet tiling, log)")
    for yi, c in zip(y, cores, strict=True):
        if np.isfinite(c):
            ax2.text(c, yi, f" {int(c)}", va="center", fontsize=7)
    fig.suptitle("Synapse budget across targets (green: fits, red: does not fit)", fontsize=10)
    fig.tight_layout()
    return fig
