"""Figures of the benchmark: samples over several runs, paired with a baseline.

Machines are shared and noisy, so a figure is never a single number: it is the
median and the range over several runs, and every figure of ours is measured
in the same run as its baseline, interleaved, so the headline is the ratio of
each pair.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

DASH = "\u2013"
"""Between the min and the max of a range."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, nearest rank; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class Spread:
    """Samples of one quantity over several runs."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        """Add the figure of one run."""
        self.values.append(value)

    @property
    def median(self) -> float:
        """The median over the runs (nan when there is none)."""
        return statistics.median(self.values) if self.values else math.nan

    @property
    def low(self) -> float:
        """The smallest run."""
        return min(self.values) if self.values else math.nan

    @property
    def high(self) -> float:
        """The largest run."""
        return max(self.values) if self.values else math.nan

    def format(self, unit: str = "", digits: int = 3) -> str:
        """``median [min-max] unit`` (an en dash between) with ``digits`` significant digits."""
        if not self.values:
            return "n/a"
        text = f"{fmt(self.median, digits)} [{fmt(self.low, digits)}{DASH}{fmt(self.high, digits)}]"
        return f"{text} {unit}".rstrip()


def latency(spread: Spread) -> str:
    """A spread of latencies in seconds, in µs below a millisecond and in ms above."""
    if not spread.values:
        return "n/a"
    scale, unit = (1e6, "µs") if spread.median < 1e-3 else (1e3, "ms")
    return Spread([v * scale for v in spread.values]).format(unit)


@dataclass
class Target:
    """A target: met when the median ratio (or our own figure) is at least (or at most) ``bound``."""

    bound: float
    at_least: bool = True
    on_ours: bool = False

    def met(self, ratio: float) -> bool:
        """Whether ``ratio`` meets the target."""
        if math.isnan(ratio):
            return False
        return ratio >= self.bound if self.at_least else ratio <= self.bound

    def describe(self, unit: str = "") -> str:
        """``>= 5x``, ``<= 2x`` or, on our own figure, ``<= 5 KB``."""
        suffix = f" {unit}" if self.on_ours else "x"
        return f"{'>=' if self.at_least else '<='} {fmt(self.bound)}{suffix}"


@dataclass
class Pair:
    """One of our figures beside its baseline, measured in the same runs.

    Attributes:
        name: What is measured, e.g. ``fan-out S=100``.
        unit: Unit of ``ours`` and ``base`` (``deliveries/s``, ``ns/record``...).
        ours: Our figure, one sample per run.
        base: The baseline's figure, one sample per run (same runs, interleaved).
        ratio: ours / base per run (the headline).
        target: The target on the ratio, if there is one.
        extra: Further columns (e.g. latency percentiles), already formatted.
        higher_is_better: Whether more of ``unit`` is better (for the ratio's reading).
        x: Where the pair sits on a plot's x axis (e.g. S), if it is plotted.
        group: Which curve of a plot the pair belongs to (e.g. ``1 record/append``).
    """

    name: str
    unit: str
    ours: Spread = field(default_factory=Spread)
    base: Spread = field(default_factory=Spread)
    ratio: Spread = field(default_factory=Spread)
    target: Target | None = None
    extra: dict[str, str] = field(default_factory=dict)
    higher_is_better: bool = True
    x: float | None = None
    group: str = ""

    def add(self, ours: float, base: float) -> None:
        """Add one run of ours and of the baseline."""
        self.ours.add(ours)
        self.base.add(base)
        self.ratio.add(ours / base if base else math.nan)

    @property
    def verdict(self) -> str:
        """``met``, ``MISSED`` or empty when there is no target."""
        if self.target is None:
            return ""
        value = self.ours.median if self.target.on_ours else self.ratio.median
        return "met" if self.target.met(value) else "MISSED"


def fmt(value: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits and a k/M suffix for big ones."""
    if math.isnan(value):
        return "nan"
    for bound, scale, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= bound:
            return f"{_sig(value / scale, digits)}{suffix}"
    return _sig(value, digits)


def _sig(value: float, digits: int) -> str:
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:.{decimals}f}"
