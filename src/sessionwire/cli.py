"""The ``sessionwire`` command line."""

from __future__ import annotations

import asyncio
import json

import click

from .schema import json_schema


@click.group()
def main() -> None:
    """sessionwire: a typed, durable, ordered event channel per agent conversation."""


@main.command()
def schema() -> None:
    """Print the JSON Schema of the records."""
    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
def serve() -> None:
    """Run the server (for now: a short demo of the engine)."""
    from .hub import Hub

    async def demo() -> None:
        async with Hub.open("memory://") as hub:
            session, _ = await hub.create_session(title="demo")
            async with session.subscribe(after=0) as sub:
                for word in ["Hello", " from", " sessionwire"]:
                    await session.publish({"type": "message.delta", "message": "m1", "part": 0, "text": word})
                async for item in sub:
                    click.echo(item.to_json())
                    if getattr(item, "seq", 0) == 4:
                        break

    asyncio.run(demo())
