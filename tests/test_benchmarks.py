"""The benchmark suite runs (tiny mode) and reports every figure beside its baseline; no timing is asserted."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from sessionwire.bench import parts, run
from sessionwire.bench.figures import Pair, Spread, Target, fmt, percentile
from sessionwire.bench.modes import TINY

ROOT = Path(__file__).resolve().parent.parent


def _finite_positive(spread: Spread) -> bool:
    return bool(spread.values) and all(math.isfinite(v) and v > 0 for v in spread.values)


def test_tiny_suite_measures_every_part_beside_its_baseline(tmp_path: Path) -> None:
    result = run(tiny=True, out_dir=tmp_path, echo=None)
    assert result.mode is TINY
    failed = [s.error for s in result.sections if s.error is not None]
    assert failed == []
    by_title = {s.title: s for s in result.sections}

    fanout = by_title["Fan-out in process"]
    names = [f"S={s}, {reading}" for reading in ("iter", "batch") for s in TINY.subscribers]
    assert [p.name.split(" (")[0] for p in fanout.pairs] == names
    for pair in fanout.pairs:
        assert len(pair.ours.values) == len(pair.base.values) == len(pair.ratio.values) == TINY.repeats
        assert _finite_positive(pair.ours) and _finite_positive(pair.base) and _finite_positive(pair.ratio)
        assert {"ours p50", "ours p99", "baseline p50", "baseline p99"} <= set(pair.extra)
    assert [p.target is not None for p in fanout.pairs] == [s == 100 for s in TINY.subscribers] * 2

    durable = by_title["Durable append (SQLite)"]
    assert len(durable.pairs) == 2 * len(TINY.producers) + 1  # and the replay
    assert durable.pairs[-1].name.startswith("replay")
    assert all(_finite_positive(p.ratio) for p in durable.pairs)

    encode = by_title["Encode and decode per record"]
    assert encode.skipped is None and all(_finite_positive(p.ratio) for p in encode.pairs)

    scale = by_title["Scale in process (memory)"]
    if scale.skipped is None:
        assert [p.name.split(" (")[0] for p in scale.pairs] == ["per open session", "per idle subscriber"]
        assert all(_finite_positive(p.ours) for p in scale.pairs)

    e2e = by_title["End to end over loopback (uvicorn)"]
    if e2e.skipped is None:
        flat = [p for p in e2e.pairs if p.x is not None]
        # SSE vs raw, SSE vs sse-starlette, WebSocket vs raw, WebSocket batched vs raw
        assert len(flat) == 4 * len(TINY.clients)
        assert all(_finite_positive(p.ratio) for p in flat)
        assert all("server CPU ours / base" in p.extra for p in flat)
        ours = ("ours SSE", "ours WebSocket", "ours WebSocket batched")
        assert set(e2e.cdfs) == {f"{c}, K={TINY.clients[-1]}" for c in ours} | {
            f"{c}, K={TINY.clients[-1]}" for c in ("raw socket", "sse-starlette")
        }

    answer = by_title["An agent's answer to K SSE clients"]
    # CPU per delivered word and word latency p99, for each K
    assert [p.name.split(",")[0] for p in answer.pairs] == ["server CPU per delivered word", "word latency p99"] * len(
        TINY.answer_clients
    )
    assert all(_finite_positive(p.ours) and _finite_positive(p.base) for p in answer.pairs)

    turns = by_title["Concurrent scripted turns"]
    if turns.skipped is None:
        assert [p.name for p in turns.pairs] == [f"all {TINY.turns} turns done"]
        assert _finite_positive(turns.pairs[0].ratio)

    redis = by_title["Durable append (Redis Streams)"]
    if redis.skipped is None:
        assert len(redis.pairs) == 2 * len(TINY.producers)

    plots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert "fan_out_in_process.png" in plots and "fan_out_in_process_cdf.png" in plots
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    for name in plots:
        assert f"]({name})" in report
    assert result.path == tmp_path / "report.md"
    assert report.startswith("# sessionwire benchmark report")
    assert "## Machine" in report and "## Headline: targets" in report
    # Every target is reported as met or missed, in the headline and in its table row.
    targets = [p for s in result.sections for p in s.pairs if p.target is not None]
    assert len(targets) >= 4
    for pair in targets:
        assert pair.verdict in ("met", "MISSED")
        assert f"**{pair.verdict}**" in report
    for section in result.sections:
        assert f"## {section.title}" in report


def test_unknown_part_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown benchmark parts"):
        run(tiny=True, out_dir=None, only=["nope"], echo=None)


def test_module_command_runs_a_part(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--only", "encode", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Encode and decode per record" in done.stdout
    assert "## Headline: targets" in done.stdout
    assert (tmp_path / "report.md").exists()
    assert "encode" in parts()


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_pair_ratio_and_verdict() -> None:
    pair = Pair("x", "ops/s", target=Target(5.0))
    pair.add(10.0, 1.0)
    pair.add(30.0, 10.0)
    pair.add(12.0, 2.0)
    assert pair.ratio.values == [10.0, 3.0, 6.0]
    assert pair.ratio.median == 6.0 and pair.verdict == "met"
    assert pair.ratio.format("x") == "6.00 [3.00\u201310.0] x"
    cost = Pair("y", "ns", target=Target(2.0, at_least=False))
    cost.add(300.0, 100.0)
    assert cost.verdict == "MISSED"
    memory = Pair("z", "KB", target=Target(5.0, at_least=False, on_ours=True))
    memory.ours.add(4.0)
    assert memory.verdict == "met"


def test_fmt_scales() -> None:
    assert fmt(9999) == "9999"
    assert fmt(46_700) == "46.7k"
    assert fmt(1_170_000) == "1.17M"
    assert fmt(0.0397) == "0.0397"
