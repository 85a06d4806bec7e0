"""PNG plots of the report (matplotlib, Agg): throughput over x, and latency CDFs.

A throughput plot draws, for every curve (``Pair.group``), our median with its
min-max range as error bars and the baseline's the same way, dashed, on log
axes. A CDF plot draws the latency samples of one run per curve.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .figures import Pair
from .report import Section


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_minor_ticks(ax: Any) -> None:
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def slug(title: str) -> str:
    """A file-name stem from a section title."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def _errors(values: Sequence[Pair], which: str) -> tuple[list[float], list[list[float]]]:
    spreads = [getattr(p, which) for p in values]
    medians = [s.median for s in spreads]
    return medians, [[m - s.low for m, s in zip(medians, spreads)], [s.high - m for m, s in zip(medians, spreads)]]


def throughput(section: Section, path: Path, xlabel: str) -> None:
    """Ours and the baseline over x (log-log), one pair of curves per group."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    groups: dict[str, list[Pair]] = {}
    for pair in section.pairs:
        if pair.x is not None and pair.base.values:
            groups.setdefault(pair.group, []).append(pair)
    for label, points in section.curves.items():
        points = sorted(points, key=lambda point: point[0])
        spreads = [spread for _, spread in points]
        medians = [spread.median for spread in spreads]
        err = [[m - sp.low for m, sp in zip(medians, spreads)], [sp.high - m for m, sp in zip(medians, spreads)]]
        dashed = "sessionwire" not in label and not label.startswith("ours")
        ax.errorbar(
            [x for x, _ in points],
            medians,
            yerr=err,
            marker="s" if dashed else "o",
            capsize=3,
            linestyle="--" if dashed else "-",
            label=label,
        )
    for group, pairs in [] if section.curves else groups.items():
        pairs.sort(key=lambda p: p.x or 0)
        xs = [p.x for p in pairs]
        label = f" ({group})" if group else ""
        ours, ours_err = _errors(pairs, "ours")
        base, base_err = _errors(pairs, "base")
        line = ax.errorbar(xs, ours, yerr=ours_err, marker="o", capsize=3, label=f"sessionwire{label}")
        color = line[0].get_color()
        ax.errorbar(xs, base, yerr=base_err, marker="s", capsize=3, linestyle="--", color=color, alpha=0.7)
        ax.plot([], [], linestyle="--", marker="s", color=color, alpha=0.7, label=f"baseline{label}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_minor_ticks(ax)
    ax.set_xlabel(xlabel)
    unit = section.pairs[0].unit if section.pairs else ""
    ax.set_ylabel(unit)
    ax.set_title(section.title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def cdf(section: Section, path: Path) -> None:
    """Latency CDFs of one run per curve, latency on a log axis in ms."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for label, values in section.cdfs.items():
        if not values:
            continue
        ordered = sorted(values)
        n = len(ordered)
        ax.plot([v * 1e3 for v in ordered], [(i + 1) / n for i in range(n)], label=label)
    ax.set_xscale("log")
    _plain_minor_ticks(ax)
    ax.set_xlabel("publish → receive latency (ms)")
    ax.set_ylabel("fraction of deliveries")
    ax.set_title(f"{section.title}: latency CDF")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


XLABELS = {"throughput": "subscribers / producers / clients (log)"}


def draw(sections: Sequence[Section], out_dir: Path) -> list[Path]:
    """Draw every section's plots into ``out_dir``; note their names in the sections; return the paths."""
    written = []
    for section in sections:
        if section.skipped is not None or section.error is not None:
            continue
        stem = slug(section.title)
        if section.plot == "throughput" and (section.curves or any(p.x is not None for p in section.pairs)):
            path = out_dir / f"{stem}.png"
            throughput(section, path, section.xlabel or XLABELS["throughput"])
            section.plots.append(path.name)
            written.append(path)
        if section.cdfs:
            path = out_dir / f"{stem}_cdf.png"
            cdf(section, path)
            section.plots.append(path.name)
            written.append(path)
    return written
