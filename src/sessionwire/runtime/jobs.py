"""A background job: runs in its session as long as it works, whatever started it."""

from __future__ import annotations

from .. import events as ev
from ..channel import Session
from .coalesce import Writer
from .context import RunContext
from .providers.base import Reply
from .work import Services, Work


class Job(Work):
    """One job: ``job.started``, its own messages (scoped with its id), throttled progress, one terminal."""

    kind = "job"

    def __init__(
        self, services: Services, session: Session, job_id: str, title: str, prompt: str, turn: str | None
    ) -> None:
        self.title = title
        self.turn = turn
        super().__init__(services, session, job_id, prompt)

    def _writer(self) -> Writer:
        s = self.services
        # Scoped by job only: its messages belong to the job, not to the turn that started it.
        return Writer(self.session, s.window, progress_window=s.progress_window, job=self.id, fence=self.fence)

    def context(self) -> RunContext:
        ctx = super().context()
        ctx.title = self.title
        return ctx

    def start_events(self) -> list[ev.Event]:
        return [ev.JobStarted(job=self.id, title=self.title, turn=self.turn, owner=self.services.owner)]

    async def body(self, ctx: RunContext) -> Reply:
        return await self.services.provider.run_job(ctx)

    def completed(self, reply: Reply) -> ev.Event:
        return ev.JobCompleted(job=self.id, summary=reply.summary)

    def failed(self, error: str, code: str | None) -> ev.Event:
        return ev.JobFailed(job=self.id, error=error, code=code)

    def stopped(self) -> ev.Event:
        if self.stop_kind == "interrupted":
            return ev.JobInterrupted(job=self.id, reason=self.stop_reason)
        return ev.JobCancelled(job=self.id, reason=self.stop_reason)
