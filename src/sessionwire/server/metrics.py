"""``GET /metrics``: Prometheus text exposition of the hub's and the server's counters."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import SessionwireError
from .context import Context, context


async def render(ctx: Context) -> str:
    """The metrics of one app instance in Prometheus text format 0.0.4."""
    hub = ctx.require_hub()
    stats = hub.statistics()
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, value: float, labels: str = "") -> None:
        if not any(line.startswith(f"# TYPE {name} ") for line in lines):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
        lines.append(f"{name}{labels} {value:g}" if isinstance(value, float) else f"{name}{labels} {value}")

    metric("sessionwire_sessions_open", "gauge", "Sessions open in this process.", stats["sessions_open"])
    metric("sessionwire_subscribers", "gauge", "Open subscriptions over all sessions.", stats["subscribers"])
    metric(
        "sessionwire_subscribers_lagging",
        "gauge",
        "Subscriptions off the live path, catching up from the log.",
        stats["subscribers_lagging"],
    )
    metric(
        "sessionwire_records_appended_total", "counter", "Records appended by this process.", stats["records_appended"]
    )
    metric("sessionwire_appends_total", "counter", "Appends (batches of records) by this process.", stats["appends"])
    for transport in ("sse", "ws"):
        metric(
            "sessionwire_streams_open",
            "gauge",
            "Open SSE streams and WebSocket connections.",
            ctx.streams[transport],
            f'{{transport="{transport}"}}',
        )
    metric(
        "sessionwire_sse_pushed",
        "gauge",
        "Open SSE streams that have caught up and are written by their session's push task.",
        ctx.pushers.members,
    )
    metric(
        "sessionwire_idempotent_replays_total",
        "counter",
        "Requests answered from the Idempotency-Key memory.",
        ctx.idempotency.replays,
    )
    metric(
        "sessionwire_feed_lag_seconds",
        "gauge",
        "How long the live feed of other processes' records has been behind (0: live).",
        round(hub.store.feed.lag, 3),
    )
    if ctx.runtime is not None:
        # The runtime's lease: while it is not held, other processes may end its work.
        try:
            async with asyncio.timeout(2.0):
                held = await hub.store.membership.held(ctx.runtime.owner)
        except (SessionwireError, TimeoutError):
            held = False  # the store does not answer: the lease may lapse (see the feed's lag)
        metric(
            "sessionwire_lease_held",
            "gauge",
            "Whether this process's runtime holds its lease (1) or not (0).",
            int(held),
            f'{{owner="{ctx.runtime.owner}"}}',
        )
    name = "sessionwire_append_latency_seconds"
    lines.append(f"# HELP {name} Time from publish to the log's acknowledgement.")
    lines.append(f"# TYPE {name} histogram")
    for bound, count in hub.stats.buckets:
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {count}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {hub.stats.appends}')
    lines.append(f"{name}_sum {hub.stats.append_seconds:.6f}")
    lines.append(f"{name}_count {hub.stats.appends}")
    return "\n".join(lines) + "\n"


async def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    return Response(await render(context(request)), media_type="text/plain; version=0.0.4; charset=utf-8")


routes = [Route("/metrics", metrics, methods=["GET"])]
