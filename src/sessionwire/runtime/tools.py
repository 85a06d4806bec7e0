"""The tool registry: named async functions the agent may call, with JSON-schema parameters.

A :class:`Tool` is a name, a description, the JSON schema of its arguments, an
async function and whether a person must approve each call. The default registry
(:meth:`ToolRegistry.default`) holds deterministic demo tools: ``echo``, ``add``,
``start_job`` (starts a background job in the session) and ``perform`` (needs
approval).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import NotFound
from ..errors import ToolError as ToolError


class ToolContext(Protocol):
    """What a tool function may know and do: where it runs, and start a background job."""

    session_id: str
    turn: str | None
    job: str | None
    call: str

    async def start_job(self, title: str, prompt: str) -> str:
        """Start a background job in the session; return its id."""
        ...


ToolFunction = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]


def _object_schema(properties: dict[str, Any] | None = None, required: Iterable[str] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": dict(properties or {}), "required": list(required)}


@dataclass(frozen=True)
class Tool:
    """A tool the agent may call.

    Attributes:
        name: What the model calls it (letters, digits, ``_`` and ``-``).
        fn: ``async fn(args, ctx) -> result``; the result must be JSON-serializable.
        description: What it does, for the model.
        parameters: JSON schema of its arguments (an object).
        needs_approval: Each call waits for a person to approve it.
        describe: Turns arguments into the action shown in ``approval.requested``.
    """

    name: str
    fn: ToolFunction
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=_object_schema)
    needs_approval: bool = False
    describe: Callable[[dict[str, Any]], str] | None = None

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "_-" for c in self.name):
            raise ValueError(f"a tool name is letters, digits, '_' and '-', not {self.name!r}")

    def action(self, args: dict[str, Any]) -> str:
        """The action a person approves, in words."""
        if self.describe is not None:
            return self.describe(args)
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"

    def validate(self, args: Any) -> dict[str, Any]:
        """Check arguments against the schema's object shape, required keys and simple types.

        Raises:
            ToolError: what is wrong with them.
        """
        if not isinstance(args, dict):
            raise ToolError(f"{self.name}: arguments are a JSON object, not {type(args).__name__}")
        missing = [k for k in self.parameters.get("required", ()) if k not in args]
        if missing:
            raise ToolError(f"{self.name}: missing argument(s) {', '.join(missing)}")
        for key, spec in self.parameters.get("properties", {}).items():
            if key in args and not _matches(args[key], spec.get("type")):
                raise ToolError(f"{self.name}: argument {key!r} must be of type {spec.get('type')}")
        return args

    def openai_schema(self) -> dict[str, Any]:
        """The tool in the Chat Completions ``tools`` format."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _matches(value: Any, kind: Any) -> bool:
    if not isinstance(kind, str) or kind not in _TYPES:
        return True
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[kind])


class ToolRegistry:
    """The tools a runtime offers, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> Tool:
        """Add a tool (replacing one of the same name); return it."""
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool:
        """The tool called ``name``.

        Raises:
            NotFound: there is no such tool.
        """
        tool = self._tools.get(name)
        if tool is None:
            raise NotFound(f"no tool named {name!r} (tools: {', '.join(sorted(self._tools)) or 'none'})")
        return tool

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def openai_tools(self) -> list[dict[str, Any]]:
        """Every tool in the Chat Completions ``tools`` format."""
        return [tool.openai_schema() for tool in self]

    @classmethod
    def default(cls) -> ToolRegistry:
        """A registry of the built-in demo tools: ``echo``, ``add``, ``start_job``, ``perform``."""
        return cls(builtin_tools())


# --------------------------------------------------------------------------- built-in tools


async def _echo(args: dict[str, Any], ctx: ToolContext) -> Any:
    return args.get("text", "")


async def _add(args: dict[str, Any], ctx: ToolContext) -> Any:
    return args["a"] + args["b"]


async def _start_job(args: dict[str, Any], ctx: ToolContext) -> Any:
    job = await ctx.start_job(args["title"], args["prompt"])
    return {"job": job}


async def _perform(args: dict[str, Any], ctx: ToolContext) -> Any:
    return f"done: {args['action']}"


def builtin_tools() -> list[Tool]:
    """The demo tools of :meth:`ToolRegistry.default` (deterministic, no side effects)."""
    return [
        Tool(
            "echo",
            _echo,
            "Return the text it is given.",
            _object_schema({"text": {"type": "string"}}, ["text"]),
        ),
        Tool(
            "add",
            _add,
            "Add two numbers.",
            _object_schema({"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"]),
        ),
        Tool(
            "start_job",
            _start_job,
            "Start a background job that keeps working after this answer; returns its id.",
            _object_schema(
                {"title": {"type": "string"}, "prompt": {"type": "string", "description": "What the job should do."}},
                ["title", "prompt"],
            ),
        ),
        Tool(
            "perform",
            _perform,
            "Perform an action on the user's behalf. A person must approve it first.",
            _object_schema({"action": {"type": "string"}}, ["action"]),
            needs_approval=True,
            describe=lambda args: str(args.get("action", "")),
        ),
    ]
