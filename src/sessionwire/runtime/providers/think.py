"""Split ``<think>…</think>`` out of a content stream into the reasoning lane, tags split across chunks too."""

from __future__ import annotations

from typing import Literal

Lane = Literal["text", "reasoning"]

OPEN = "<think>"
CLOSE = "</think>"


class ThinkSplitter:
    """Feed content chunks; get ``(lane, text)`` pieces with the tags removed.

    A chunk that ends with the start of a tag (``"<thi"``) is held back until the
    next chunk tells whether it is one.
    """

    def __init__(self) -> None:
        self.inside = False
        self._held = ""

    @property
    def lane(self) -> Lane:
        """The lane the next text goes to."""
        return "reasoning" if self.inside else "text"

    def feed(self, chunk: str) -> list[tuple[Lane, str]]:
        """Split one chunk; returns the pieces that are certain so far."""
        text = self._held + chunk
        out: list[tuple[Lane, str]] = []
        while True:
            tag = CLOSE if self.inside else OPEN
            at = text.find(tag)
            if at < 0:
                break
            if at:
                out.append((self.lane, text[:at]))
            text = text[at + len(tag) :]
            self.inside = not self.inside
        keep = _partial_tag(text, CLOSE if self.inside else OPEN)
        self._held = text[len(text) - keep :] if keep else ""
        rest = text[: len(text) - keep]
        if rest:
            out.append((self.lane, rest))
        return out

    def flush(self) -> list[tuple[Lane, str]]:
        """What is held back at the end of the stream (a tag's start that never completed)."""
        held, self._held = self._held, ""
        return [(self.lane, held)] if held else []


def _partial_tag(text: str, tag: str) -> int:
    # The length of the longest end of `text` that is a proper start of `tag`.
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0
