"""Acting on a running conversation: ``approve``, ``deny`` and ``cancel``."""

from __future__ import annotations

from typing import Literal

import click

from ..client import Client
from ..errors import Conflict
from .common import make_client, run, token_option, url_option

by_option = click.option("--by", default=None, help="Who decides (recorded with the decision).")


async def resolve(
    client: Client, session: str, approval: str, decision: Literal["approve", "deny"], by: str | None
) -> str:
    """Approve or deny ``approval``; the line to print.

    Raises:
        click.ClickException: it was already resolved (saying how).
        NotFound: the session has no such approval.
    """
    try:
        await client.resolve_approval(session, approval, decision, by=by)
    except Conflict as exc:
        known = (await client.state(session)).approvals.get(approval)
        if known is None or known.status == "pending":
            raise click.ClickException(f"cannot {decision} {approval}: {exc}") from None
        by_whom = f" by {known.by}" if known.by else ""
        raise click.ClickException(f"approval {approval} was already resolved: {known.status}{by_whom}") from None
    return f"approval {approval} {'approved' if decision == 'approve' else 'denied'}"


def _decide(decision: Literal["approve", "deny"]) -> click.Command:
    verb = "Approve" if decision == "approve" else "Deny"

    @click.command(name=decision, help=f"{verb} the pending approval APPROVAL of SESSION.")
    @url_option
    @token_option
    @by_option
    @click.argument("session")
    @click.argument("approval")
    def command(url: str, token: str | None, by: str | None, session: str, approval: str) -> None:
        async def go() -> str:
            async with make_client(url, session, token) as client:
                return await resolve(client, session, approval, decision, by)

        click.echo(run(go()))

    return command


approve = _decide("approve")
deny = _decide("deny")


@click.command()
@url_option
@token_option
@click.argument("session")
@click.option("--turn", default=None, help="The turn to cancel [default: the running one].")
@click.option("--job", default=None, help="The job to cancel instead of a turn.")
def cancel(url: str, token: str | None, session: str, turn: str | None, job: str | None) -> None:
    """Cancel SESSION's running turn (or --turn T, or --job J); its terminal event says when it stopped.

    Without --turn or --job, every turn the session's state shows running is cancelled; none is an error.
    """
    if turn is not None and job is not None:
        raise click.UsageError("pass --turn or --job, not both")

    async def go() -> list[str]:
        async with make_client(url, session, token) as client:
            if job is not None:
                await client.cancel_job(session, job)
                return [f"cancelling job {job}"]
            turns = [turn] if turn is not None else await _running_turns(client, session)
            for one in turns:
                await client.cancel_turn(session, one)
            return [f"cancelling turn {one}" for one in turns]

    for line in run(go()):
        click.echo(line)


async def _running_turns(client: Client, session: str) -> list[str]:
    state = await client.state(session)
    running = [t.id for t in state.turns.values() if t.status == "running"]
    if not running:
        raise click.ClickException(f"no turn is running in session {session}")
    return running
