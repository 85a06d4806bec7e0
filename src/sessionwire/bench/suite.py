"""Run the benchmark suite: every part in turn, printed as it goes, then the report.

``run()`` is what ``python -m benchmarks`` and ``sessionwire bench`` call. Each
part is optional: a part whose dependency is missing is skipped with a reason,
and a part that fails is reported as failed without stopping the others.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import answer, durable, e2e, encode, fanout, plots, scale, streams, turns
from .modes import Mode, pick
from .report import Section, headline, machine, render, render_section

TITLE = "sessionwire benchmark report"

Part = Callable[[Mode, Path], Awaitable[Section]]


async def _fanout(mode: Mode, scratch: Path) -> Section:
    return await fanout.measure(mode)


async def _encode(mode: Mode, scratch: Path) -> Section:
    return await encode.measure(mode)


async def _durable(mode: Mode, scratch: Path) -> Section:
    return await durable.measure(mode, str(scratch))


async def _redis(mode: Mode, scratch: Path) -> Section:
    return await streams.measure(mode, scratch)


async def _scale(mode: Mode, scratch: Path) -> Section:
    return await scale.measure(mode)


async def _e2e(mode: Mode, scratch: Path) -> Section:
    return await e2e.measure(mode, scratch)


async def _answer(mode: Mode, scratch: Path) -> Section:
    return await answer.measure(mode, scratch)


async def _turns(mode: Mode, scratch: Path) -> Section:
    return await turns.measure(mode, scratch)


def parts() -> dict[str, Part]:
    """Every part of the suite by name, in the order they run."""
    return {
        "fanout": _fanout,
        "encode": _encode,
        "durable": _durable,
        "redis": _redis,
        "scale": _scale,
        "turns": _turns,
        "e2e": _e2e,
        "answer": _answer,
    }


@dataclass
class Result:
    """What a run of the suite produced.

    Attributes:
        mode: The mode it ran in.
        sections: One per part, in order (skipped and failed parts included).
        markdown: The report.
        path: Where the report was written, if it was.
    """

    mode: Mode
    sections: list[Section]
    markdown: str
    path: Path | None


def run(
    quick: bool = True,
    full: bool = False,
    tiny: bool = False,
    out_dir: str | Path | None = "benchmarks/out",
    only: Sequence[str] | None = None,
    echo: Callable[[str], None] | None = print,
) -> Result:
    """Run the suite and write ``report.md`` (and its plots) to ``out_dir``.

    Args:
        quick: The default mode, about a minute.
        full: The long runs (wins over ``quick``).
        tiny: A few seconds, for the tests (wins over both).
        out_dir: Where to write the report; None writes nothing.
        only: Names of the parts to run (see :func:`parts`); all when None.
        echo: Called with each section's markdown as it is done; None is silent.
    """
    mode = pick(quick=quick, full=full, tiny=tiny)
    available = parts()
    names = list(available) if only is None else list(only)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown benchmark parts {unknown}: choose from {list(available)}")
    started = time.perf_counter()
    sections = asyncio.run(_run_all(mode, [available[n] for n in names], echo))
    path = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if plots.available():
            plots.draw(sections, out)
        elif echo is not None:
            echo("(no plots: matplotlib is not installed; it is in the `dev` extra)")
        path = out / "report.md"
    markdown = render(TITLE, mode.name, sections, time.perf_counter() - started)
    if path is not None:
        path.write_text(markdown + "\n", encoding="utf-8")
    return Result(mode, sections, markdown, path)


async def _run_all(mode: Mode, chosen: list[Part], echo: Callable[[str], None] | None) -> list[Section]:
    sections = []
    with tempfile.TemporaryDirectory(prefix="sessionwire-bench-") as scratch:
        for part in chosen:
            try:
                section = await part(mode, Path(scratch))
            except Exception:
                name = part.__name__.strip("_")
                section = Section(f"{name} (failed)", error=traceback.format_exc())
            sections.append(section)
            if echo is not None:
                echo("\n".join(render_section(section)))
    return sections


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks [--full|--tiny] [--out DIR] [--only PART ...]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="the long runs")
    size.add_argument("--tiny", action="store_true", help="a few seconds (what the tests run)")
    parser.add_argument("--out", default="benchmarks/out", help="directory of report.md and the plots")
    parser.add_argument("--only", nargs="+", choices=list(parts()), help="run only these parts")
    args = parser.parse_args(argv)
    result = run(full=args.full, tiny=args.tiny, out_dir=args.out, only=args.only)
    print("\n".join(["## Machine", "", *machine(), "", "## Headline: targets", "", *headline(result.sections)]))
    if result.path is not None:
        print(f"\nreport: {result.path}")
    return 0
