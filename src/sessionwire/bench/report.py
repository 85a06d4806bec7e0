"""The report: machine facts, then one table per section, ratios first.

The same markdown is printed while the suite runs and written to
``report.md``; it reads well as plain text too.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass, field

from .figures import DASH, Pair, Spread, fmt


@dataclass
class Section:
    """One part of the suite: a title, how it was measured, and its figures.

    Attributes:
        title: e.g. ``Fan-out in process``.
        method: One paragraph: what ours and the baseline do.
        pairs: The figures, each beside its baseline.
        skipped: Why the section did not run, when it did not.
        error: The traceback, when the part failed.
        notes: Further lines (findings, caveats).
        plots: File names of the section's plots, relative to the report.
        cdfs: Latency samples (seconds) of one run, by curve label, for a CDF plot.
        plot: The kind of plot the section wants: ``throughput`` (pairs over x), or empty.
        xlabel: The x axis of that plot.
        curves: For a throughput plot of several contenders: label → [(x, figure)]; when empty
            the plot draws each pair group's ours and baseline.
    """

    title: str
    method: str = ""
    pairs: list[Pair] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    cdfs: dict[str, list[float]] = field(default_factory=dict)
    plot: str = ""
    xlabel: str = ""
    curves: dict[str, list[tuple[float, Spread]]] = field(default_factory=dict)


def machine() -> list[str]:
    """Lines describing the machine and the library versions."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    versions = []
    for dist in ("sessionwire", "msgspec", "orjson", "starlette", "uvicorn", "sse-starlette", "websockets", "redis"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    import sqlite3

    return [
        f"- CPU: {os.cpu_count()} cores ({_cpu_model()}), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"- Python {platform.python_version()} ({sys.implementation.name}) on {platform.platform()}",
        f"- SQLite {sqlite3.sqlite_version}; " + ", ".join(versions),
    ]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def headline(sections: list[Section]) -> list[str]:
    """The figures that have a target, one line each, met or missed; and the parts that failed."""
    lines = []
    for section in sections:
        if section.error is not None:
            lines.append(f"- **FAILED** {section.title}: {section.error.strip().splitlines()[-1]}")
        for pair in section.pairs:
            if pair.target is None:
                continue
            on = "ours" if pair.target.on_ours else "ratio"
            value = pair.ours if pair.target.on_ours else pair.ratio
            unit = pair.unit if pair.target.on_ours else "x"
            lines.append(
                f"- **{pair.verdict}** {section.title} — {pair.name}: {on} {value.format(unit)}"
                f" (target {pair.target.describe(unit)})"
            )
    return lines


def render_section(section: Section) -> list[str]:
    """A section as markdown: title, method, then a table of its pairs."""
    lines = [f"## {section.title}", ""]
    if section.method:
        lines += [section.method, ""]
    if section.error is not None:
        last = section.error.strip().splitlines()[-1]
        return [*lines, f"**Failed**: {last}", "", "```", section.error.rstrip(), "```", ""]
    if section.skipped is not None:
        return [*lines, f"_Skipped: {section.skipped}_", ""]
    if section.pairs:
        extra = list(dict.fromkeys(k for p in section.pairs for k in p.extra))
        head = ["case", "ours", "baseline", "ratio (ours/baseline)", *extra, "target"]
        rows = [head, ["---"] * len(head)]
        for p in section.pairs:
            target = "" if p.target is None else f"{p.target.describe(p.unit)} {p.verdict}"
            base = p.base.format(p.unit) if p.base.values else "—"
            ratio = p.ratio.format("x") if p.base.values else "—"
            if p.base.values and not p.higher_is_better:
                ratio += " (lower is better)"
            rows.append(
                [p.name, p.ours.format(p.unit), base, ratio, *(p.extra.get(k, "") for k in extra), target.strip()]
            )
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    lines += [f"- {note}" for note in section.notes]
    if section.notes:
        lines.append("")
    lines += [f"![{name}]({name})" for name in section.plots]
    if section.plots:
        lines.append("")
    return lines


def render(title: str, mode: str, sections: list[Section], seconds: float) -> str:
    """The whole report as markdown."""
    lines = [f"# {title}", "", f"Mode: {mode}; took {fmt(seconds)} s.", "", "## Machine", "", *machine(), ""]
    lines += [
        f"Every figure is median [min{DASH}max] over the runs; each of ours was measured in the same",
        "run as its baseline, interleaved, and the ratio is taken per run.",
        "",
        "## Headline: targets",
        "",
        *(headline(sections) or ["- (no target was measured)"]),
        "",
    ]
    for section in sections:
        lines += render_section(section)
    return "\n".join(lines)
