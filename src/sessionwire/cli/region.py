"""A region at the bottom of the terminal, redrawn in place, with what finished printed once above it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, ConsoleRenderable, Group, RenderableType, RenderHook
from rich.control import Control
from rich.live_render import LiveRender
from rich.text import Text


class LiveRegion(RenderHook):
    """The bottom lines of a terminal, drawn again on every update, under output printed above them.

    Each :meth:`update` is one write: the region is erased, what finished is printed where it
    stood (so it follows the output before it, however much the region shrinks), and the new
    region is drawn under it. (rich's ``Live`` redraws its old region first, which leaves blank
    rows when the region shrinks.) On a console that is not a terminal, what finished is printed
    as it comes and the region once, at the end.

    Args:
        console: Where to draw.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._render = LiveRender(Text(""), vertical_overflow="crop")
        self._interactive = console.is_interactive

    def __enter__(self) -> LiveRegion:
        if self._interactive:
            self.console.show_cursor(False)
            self.console.push_render_hook(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._interactive:
            self.console.pop_render_hook()
            self.console.line()  # the region stays on screen; the shell's prompt goes under it
            self.console.show_cursor(True)
        else:
            self.console.print(self._render.renderable)

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        """Erase the region, then print the renderables and the region under them (rich calls this)."""
        return [self._render.position_cursor(), *renderables, self._render]

    def update(self, region: RenderableType, finished: Sequence[RenderableType] = ()) -> None:
        """Print ``finished`` above the region and draw ``region`` as the new region, in one write."""
        self._render.set_renderable(region)
        if finished:
            self.console.print(Group(*finished))
        elif self._interactive:
            self.console.print(Control())
