"""Helpers for the browser tests: a real ``sessionwire serve``, Debian's Chromium, page probes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "src" / "sessionwire" / "static"
ARTIFACTS = ROOT / "test-artifacts"
SERVE = [str(Path(sys.executable).parent / "sessionwire")]  # the console script of this venv

# pytest-playwright's session fixtures trip pytest 9's deprecation of instance-method fixtures
# (a warning, made an error by our settings): not ours to fix, so each browser test module ignores it.
PLAYWRIGHT_WARNINGS = pytest.mark.filterwarnings(
    "ignore:Session-scoped fixtures defined as instance methods:pytest.PytestRemovedIn10Warning"
)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Drive Debian's Chromium (never a downloaded browser)."""
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """A desktop-sized window for every page."""
    return {**browser_context_args, "viewport": {"width": 1280, "height": 820}}


def ensure_built() -> None:
    """Build the web UI if it is not built (``scripts/setup.sh`` normally does it)."""
    if (STATIC / "index.html").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"the web UI is not built ({STATIC / 'index.html'} is missing) and npm is not installed")
    web = ROOT / "web"
    if not (web / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=web, check=True, capture_output=True)
    subprocess.run([npm, "run", "build"], cwd=web, check=True, capture_output=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A ``sessionwire serve`` subprocess on 127.0.0.1 with its own SQLite file."""

    def __init__(self, db: Path, port: int | None = None, token_delay_ms: float = 5, **settings: Any) -> None:
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token_delay_ms = token_delay_ms
        self.env = {
            **os.environ,
            "NO_PROXY": "127.0.0.1",
            **{f"SESSIONWIRE_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = db.with_suffix(".log")

    def start(self, timeout: float = 20.0) -> Server:
        """Start the process and wait until it answers HTTP."""
        command = [
            *SERVE,
            "serve",
            "--port",
            str(self.port),
            "--store",
            os.environ.get("SESSIONWIRE_TEST_WEB_STORE", f"sqlite:///{self.db}"),
            "--token-delay-ms",
            str(self.token_delay_ms),
            "--log-level",
            "warning",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"sessionwire serve exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/", timeout=1.0, trust_env=False).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"sessionwire serve did not answer on {self.url} in {timeout}s")
            time.sleep(0.05)  # polling the condition (the port answers), bounded by the deadline

    def kill(self) -> None:
        """Kill the process at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL if it lingers)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    # -------------------------------------------------------------- API

    def create_session(self, title: str | None = None) -> tuple[str, str]:
        """Create a session over the API: (id, token)."""
        body = {"title": title} if title else {}
        answer = httpx.post(self.url + "/v1/sessions", json=body, timeout=10, trust_env=False).raise_for_status().json()
        session = answer["session"]
        return (session if isinstance(session, str) else session["id"]), answer["token"]

    def state(self, session: str, token: str) -> dict[str, Any]:
        """The server's folded state of a session."""
        answer = httpx.get(
            f"{self.url}/v1/sessions/{session}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            trust_env=False,
        )
        return answer.raise_for_status().json()["state"]  # type: ignore[no-any-return]

    def send(self, session: str, token: str, text: str) -> dict[str, Any]:
        """Start a turn over the API."""
        answer = httpx.post(
            f"{self.url}/v1/sessions/{session}/turns",
            json={"text": text},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            trust_env=False,
        )
        return answer.raise_for_status().json()  # type: ignore[no-any-return]


def serve(tmp: Path, **settings: Any) -> Iterator[Server]:
    """Run a server for the length of a fixture."""
    ensure_built()
    server = Server(tmp / "sessionwire.db", **settings).start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------ page helpers


def numbered(n: int) -> str:
    """The scripted agent's numbered answer: ``w1 w2 ... wN``."""
    return " ".join(f"w{i}" for i in range(1, n + 1))


def norm(text: str) -> str:
    """Whitespace-normalized text."""
    return " ".join(text.split())


def new_session(page: Page, server: Server) -> str:
    """Open the UI, create a conversation with the button, wait until it is live; its id.

    The UI reopens the conversation a tab of this origin showed last, so the view shown at first may
    be live already: wait for a conversation the page did not know before the click.
    """
    page.goto(server.url + "/")
    known = page.evaluate("() => (JSON.parse(localStorage.getItem('sessionwire.sessions')) ?? []).map(s => s.id)")
    page.get_by_test_id("new-session").click()
    view = page.wait_for_function(
        """(known) => {
            const v = document.querySelector('[data-testid=session]');
            const live = v?.querySelector('[data-testid=connection]')?.dataset.state === 'live';
            return !!v && live && !known.includes(v.dataset.sessionId) && v.dataset.sessionId;
        }""",
        arg=known,
        timeout=10_000,
    )
    return str(view.json_value())


def token_of(page: Page, session: str) -> str:
    """The token the page keeps for a session (in localStorage)."""
    return str(
        page.evaluate(
            "(id) => JSON.parse(localStorage.getItem('sessionwire.sessions')).find(s => s.id === id).token", session
        )
    )


def send(page: Page, text: str) -> None:
    """Type a message in the composer and send it."""
    box = page.get_by_test_id("composer-input")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('[data-testid=composer-input]').value === ''")


def start_job(page: Page, prompt: str) -> None:
    """Start a background job from the composer's Job button."""
    page.get_by_test_id("composer-input").fill(prompt)
    page.get_by_test_id("start-job").click()
    page.wait_for_function("() => document.querySelector('[data-testid=composer-input]').value === ''")


def turns(page: Page) -> Any:
    """The turn blocks of the conversation shown."""
    return page.locator("[data-testid=conversation] [data-testid=turn]")


def wait_turns_done(page: Page, count: int, timeout: float = 20_000) -> None:
    """Wait until the page shows ``count`` turns, none of them running."""
    page.wait_for_function(
        """(n) => {
            const ts = [...document.querySelectorAll('[data-testid=conversation] [data-testid=turn]')];
            return ts.length === n && ts.every(t => t.dataset.status !== 'running');
        }""",
        arg=count,
        timeout=timeout,
    )


def message_texts(page: Page, scope: str = "body") -> dict[str, dict[str, str]]:
    """Per message id: the normalized text shown in its text parts and reasoning parts."""
    return page.evaluate(  # type: ignore[no-any-return]
        """(scope) => {
            const out = {};
            for (const m of document.querySelector(scope).querySelectorAll('[data-testid=message]')) {
                const text = [...m.querySelectorAll('[data-testid=message-text]')].map(e => e.textContent).join(' ');
                const reasoning = [...m.querySelectorAll('[data-testid=reasoning-text]')]
                    .map(e => e.textContent).join(' ');
                out[m.dataset.messageId] = {
                    text: text.split(/\\s+/).filter(Boolean).join(' '),
                    reasoning: reasoning.split(/\\s+/).filter(Boolean).join(' '),
                };
            }
            return out;
        }""",
        scope,
    )


def folded_texts(state: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The same view of the server's folded state."""
    out = {}
    for message_id in state["message_order"]:
        parts = state["messages"][message_id]["parts"]
        out[message_id] = {
            "text": norm(" ".join(p["text"] for p in parts if p["kind"] == "text")),
            "reasoning": norm(" ".join(p["text"] for p in parts if p["kind"] == "reasoning")),
        }
    return out


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot under test-artifacts/ (not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"web-{name}.png"
    page.screenshot(path=str(path))
    return path


# A probe installed in the page: on every animation frame it checks that every text that starts
# with the scripted agent's numbered words is exactly w1..wk (no word lost, none repeated), and
# records what it saw, so a test can tell a stream was watched mid-way.
SEQUENCE_PROBE = """
(() => {
  const seen = (window.__seq = window.__seq || { samples: 0, partial: 0, bad: [], max: {} });
  const check = () => {
    for (const el of document.querySelectorAll('[data-testid=message-text]')) {
      const words = el.textContent.split(/\\s+/).filter(Boolean);
      if (words[0] !== 'w1') continue;
      const id = el.closest('[data-testid=message]')?.dataset.messageId ?? '?';
      seen.samples++;
      for (let i = 0; i < words.length; i++) {
        if (words[i] !== 'w' + (i + 1)) {
          seen.bad.push({ id, at: i, got: words[i], around: words.slice(Math.max(0, i - 2), i + 3).join(' ') });
          break;
        }
      }
      const streaming = el.closest('[data-testid=message]')?.dataset.status === 'streaming';
      if (streaming) seen.partial++;
      seen.max[id] = Math.max(seen.max[id] ?? 0, words.length);
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();
"""

# Watches for removed or replaced nodes that held text, from the moment it is installed.
MUTATION_PROBE = """
() => {
  const log = (window.__removed = []);
  window.__textChanges = 0;
  const observer = new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'characterData') { window.__textChanges++; continue; }
      if (r.addedNodes.length) window.__textChanges++;
      for (const node of r.removedNodes) {
        const text = (node.textContent || '').trim();
        const parent = r.target.nodeName + '.' + (r.target.className || '');
        if (text) log.push({ node: node.nodeName, parent, text: text.slice(0, 80) });
      }
    }
  });
  observer.observe(document.body, { childList: true, subtree: true, characterData: true });
  window.__observer = observer;
}
"""


def wait_text(page: Page, selector: str, pattern: str, timeout: float = 20_000) -> None:
    """Wait until the element's text matches the regular expression."""
    page.wait_for_function(
        "([sel, pat]) => { const e = document.querySelector(sel); return !!e && new RegExp(pat).test(e.textContent); }",
        arg=[selector, pattern],
        timeout=timeout,
    )


def wait_live(page: Page, session: str, timeout: float = 10_000) -> None:
    """Wait until the page shows that conversation, live."""
    page.locator(
        f"[data-testid=session][data-session-id='{session}'] [data-testid=connection][data-state=live]"
    ).wait_for(timeout=timeout)


# Where a control is and what a tap at its centre would reach.
HIT = """(el) => {
    const r = el.getBoundingClientRect();
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    const top = document.elementFromPoint(x, y);
    return {
        inside: r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0
            && r.right <= window.innerWidth && r.bottom <= window.innerHeight,
        hit: !!top && (top === el || el.contains(top)),
        top: top ? top.outerHTML.slice(0, 120) : null,
        rect: [r.left, r.top, r.width, r.height],
    };
}"""


def tap_control(page: Page, testid: str, scope: str = "body", nth: int = 0) -> None:
    """Check that a control lies inside the viewport and that its centre reaches it, then tap it there.

    It may be scrolled into view vertically first (as a person would); nothing may need a sideways scroll.
    """
    control = page.locator(scope).get_by_test_id(testid).nth(nth)
    control.wait_for()
    control.scroll_into_view_if_needed()
    hit = control.evaluate(HIT)
    assert hit["inside"] and hit["hit"], (testid, hit)
    control.tap()


def stream_on(page: Page, more: int, turn: int = 0) -> None:
    """Let a running turn's answer stream ``more`` words, or end (a turn stopped by mistake fails fast)."""
    words = """(n) => {
        const turn = document.querySelectorAll('[data-testid=conversation] [data-testid=turn]')[n];
        const text = turn.querySelector('[data-role=assistant] [data-testid=message-text]')?.textContent ?? '';
        return { running: turn.dataset.status === 'running', words: text.split(/\\s+/).length };
    }"""
    target = page.evaluate(words, turn)["words"] + more
    page.wait_for_function(
        f"([n, target]) => {{ const now = ({words})(n); return !now.running || now.words >= target; }}",
        arg=[turn, target],
    )


COPIED = """async ([el, want, label]) => el.dataset.copied === 'yes'
    && (label === null || el.innerText.trim() === label)
    && (await navigator.clipboard.readText()) === want"""


def copied(button: Locator, expected: str, label: str | None = None, timeout: float = 10.0) -> None:
    """Wait until the clipboard holds the text and the button says it copied it (it says so for 1.5 s only).

    With ``label``, the button's words must say it too, in the same check. The check runs in the
    page and is awaited each time: ``wait_for_function`` does not await a predicate's promise (it
    takes the promise itself as a truthy answer), so it cannot wait for the clipboard.
    """
    handle = button.element_handle()
    deadline = time.monotonic() + timeout
    while not button.page.evaluate(COPIED, [handle, expected, label]):
        if time.monotonic() > deadline:
            said = button.page.evaluate("el => [el.dataset.copied ?? null, el.innerText]", handle)
            raise AssertionError(f"the button never said it copied {expected!r} (data-copied, text: {said})")
        button.page.wait_for_timeout(20)


def focused(page: Page) -> str | None:
    """The test id of the element that has the focus."""
    return page.evaluate("() => document.activeElement?.dataset.testid ?? null")  # type: ignore[no-any-return]


# Everything that scrolls sideways: the document, and any element whose content is wider than it
# and that scrolls (code blocks and tables excepted: a long line scrolls inside its block by design).
SIDEWAYS = """() => {
    const out = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > window.innerWidth) out.push(`document ${doc.scrollWidth} > ${window.innerWidth}`);
    for (const el of document.querySelectorAll('body *')) {
        if (el.closest('pre, .md table')) continue;
        const x = getComputedStyle(el).overflowX;
        if ((x === 'auto' || x === 'scroll') && el.scrollWidth > el.clientWidth + 1) {
            out.push(`${el.tagName}.${el.className} ${el.scrollWidth} > ${el.clientWidth}`);
        }
    }
    return out;
}"""


def assert_no_sideways_scroll(page: Page) -> None:
    """Nothing on the page scrolls horizontally."""
    assert page.evaluate(SIDEWAYS) == []


__all__ = [
    "ARTIFACTS",
    "MUTATION_PROBE",
    "PLAYWRIGHT_WARNINGS",
    "SEQUENCE_PROBE",
    "Server",
    "assert_no_sideways_scroll",
    "browser_context_args",
    "browser_type_launch_args",
    "copied",
    "focused",
    "folded_texts",
    "message_texts",
    "new_session",
    "norm",
    "numbered",
    "screenshot",
    "send",
    "serve",
    "start_job",
    "stream_on",
    "tap_control",
    "token_of",
    "turns",
    "wait_live",
    "wait_text",
    "wait_turns_done",
]
