"""The web UI in a real browser: streaming without remounts, exact text, tabs, reloads, scoping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from web_util import (  # noqa: F401  (fixtures are used by name)
    MUTATION_PROBE,
    PLAYWRIGHT_WARNINGS,
    SEQUENCE_PROBE,
    Server,
    browser_context_args,
    browser_type_launch_args,
    folded_texts,
    message_texts,
    new_session,
    norm,
    numbered,
    screenshot,
    send,
    serve,
    start_job,
    token_of,
    wait_text,
    wait_turns_done,
)

pytestmark = PLAYWRIGHT_WARNINGS

LAST_ANSWER = "[data-testid=conversation] [data-testid=message][data-role=assistant]:last-of-type"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("web-streaming"))


def last_answer_has(page: Page, word: str) -> None:
    page.wait_for_function(
        """(word) => {
            const ms = document.querySelectorAll('[data-testid=conversation] [data-role=assistant]');
            const m = ms[ms.length - 1];
            return !!m && m.textContent.split(/\\s+/).includes(word);
        }""",
        arg=word,
        timeout=20_000,
    )


def wait_jobs_done(page: Page, count: int) -> None:
    page.wait_for_function(
        """(n) => {
            const js = [...document.querySelectorAll('[data-testid=job]')];
            return js.length === n && js.every(j => j.dataset.status !== 'running');
        }""",
        arg=count,
        timeout=20_000,
    )


def store_state(page: Page, session: str) -> dict[str, Any]:
    return page.evaluate("(id) => window.sessionwire.state(id)", session)  # type: ignore[no-any-return]


def test_streaming_never_removes_or_replaces_an_element_that_holds_text(page: Page, server: Server) -> None:
    page.add_init_script(SEQUENCE_PROBE)
    session = new_session(page, server)
    start_job(page, "/long 300")
    send(page, "/long 500")
    last_answer_has(page, "w5")
    page.locator("[data-testid=job] [data-testid=message-text]").first.wait_for()
    page.evaluate(MUTATION_PROBE)
    at_start = page.evaluate(
        """() => {
            const ms = document.querySelectorAll('[data-testid=conversation] [data-role=assistant]');
            const message = ms[ms.length - 1];
            const job = document.querySelector('[data-testid=job]');
            window.__refs = {
                message, text: message.querySelector('[data-testid=message-text]'),
                job, jobText: job.querySelector('[data-testid=message-text]'),
                progress: job.querySelector('[data-testid=job-progress]'),
            };
            return { message: message.dataset.status, job: job.dataset.status,
                     words: message.textContent.split(/\\s+/).filter(Boolean).length };
        }"""
    )
    # The references were taken mid-stream: both were still streaming.
    assert at_start["message"] == "streaming"
    assert at_start["job"] == "running"
    assert at_start["words"] < 500
    screenshot(page, "streaming")
    wait_turns_done(page, 1)
    wait_jobs_done(page, 1)
    result = page.evaluate(
        """() => {
            window.__observer.takeRecords(); window.__observer.disconnect();
            const r = window.__refs;
            const ms = document.querySelectorAll('[data-testid=conversation] [data-role=assistant]');
            const message = ms[ms.length - 1];
            const job = document.querySelector('[data-testid=job]');
            return {
                removed: window.__removed, changes: window.__textChanges,
                connected: [r.message, r.text, r.job, r.jobText, r.progress].every(e => e.isConnected),
                sameMessage: message === r.message,
                sameText: message.querySelector('[data-testid=message-text]') === r.text,
                sameJob: job === r.job,
                sameJobText: job.querySelector('[data-testid=message-text]') === r.jobText,
                text: r.text.textContent, jobText: r.jobText.textContent,
                status: r.message.dataset.status, jobStatus: r.job.dataset.status,
                seq: window.__seq,
            };
        }"""
    )
    assert result["removed"] == []
    assert result["changes"] > 20  # the observer did watch the streams
    assert result["connected"]
    assert result["sameMessage"] and result["sameText"] and result["sameJob"] and result["sameJobText"]
    assert norm(result["text"]) == numbered(500)
    assert norm(result["jobText"]) == numbered(300)
    assert (result["status"], result["jobStatus"]) == ("completed", "completed")
    assert result["seq"]["bad"] == []
    assert result["seq"]["partial"] > 0
    # Records were applied in batches (deltas per animation frame), each once.
    stats = page.evaluate("(id) => window.sessionwire.stats(id)", session)
    assert stats["applied"] == stats["seq"] - 1  # every record after session.created (loaded with the page)
    assert stats["batches"] < stats["applied"]


def test_final_page_text_and_store_equal_the_servers_folded_state(page: Page, server: Server) -> None:
    session = new_session(page, server)
    start_job(page, "/long 80")
    for text in ["/think colors", "hello there <i>not html</i> & more", '/tool add {"a": 2, "b": 3}', "/long 120"]:
        send(page, text)
    send(page, "/job 40 Side count")
    send(page, "/fail")
    wait_turns_done(page, 6)
    wait_jobs_done(page, 2)
    failed = page.locator("[data-testid=turn]").nth(5)
    assert failed.get_attribute("data-status") == "failed"
    assert failed.get_by_test_id("turn-status").inner_text() == "failed"
    assert "asked to fail" in failed.get_by_test_id("turn-detail").inner_text()
    screenshot(page, "conversation")
    token = token_of(page, session)
    state = server.state(session, token)
    shown = message_texts(page)
    expected = folded_texts(state)
    assert set(shown) == set(expected)
    for message_id, texts in expected.items():
        assert shown[message_id] == texts, message_id
    assert any("w120" in t["text"] for t in shown.values())
    assert any("<i>not html</i>" in t["text"] for t in shown.values())
    assert page.locator("[data-testid=conversation] i").count() == 0
    # The page's own fold (@sessionwire/client's) reached the very same state as the server's.
    assert store_state(page, session) == state


def test_a_job_keeps_streaming_into_its_card_after_its_turn_completed(page: Page, server: Server) -> None:
    new_session(page, server)
    send(page, "/job 400 Long tail")
    wait_turns_done(page, 1)
    job = page.locator("[data-testid=job]")
    job.wait_for()
    page.evaluate("() => { window.__card = document.querySelector('[data-testid=job]'); }")
    assert job.get_attribute("data-status") == "running"  # the turn ended, the job did not
    wait_jobs_done(page, 1)
    same = page.evaluate("() => window.__card === document.querySelector('[data-testid=job]')")
    assert same
    assert job.get_attribute("data-status") == "completed"
    assert norm(job.get_by_test_id("job-output").inner_text()) == numbered(400)
    assert norm(job.get_by_test_id("job-progress-text").inner_text()).startswith("400 / 400")
    assert job.get_by_test_id("job-title").inner_text() == "Long tail"


def test_two_tabs_on_one_conversation_show_the_same(context: BrowserContext, page: Page, server: Server) -> None:
    session = new_session(page, server)
    other = context.new_page()
    other.goto(f"{server.url}/#/s/{session}")
    other.locator("[data-testid=connection][data-state=live]").wait_for()
    send(page, "/long 150")
    send(other, "/think tabs")
    start_job(other, "/long 60")
    for tab in (page, other):
        wait_turns_done(tab, 2)
        wait_jobs_done(tab, 1)
    assert message_texts(page) == message_texts(other)
    assert page.get_by_test_id("conversation").inner_text() == other.get_by_test_id("conversation").inner_text()
    assert page.get_by_test_id("jobs").inner_text() == other.get_by_test_id("jobs").inner_text()
    assert store_state(page, session) == store_state(other, session)


def test_reload_mid_stream_resumes_without_a_lost_or_repeated_word(page: Page, server: Server) -> None:
    page.add_init_script(SEQUENCE_PROBE)
    session = new_session(page, server)
    send(page, "/long 700")
    last_answer_has(page, "w40")
    page.reload()
    page.locator("[data-testid=connection][data-state=live]").wait_for()
    wait_turns_done(page, 1)
    seen = page.evaluate("() => window.__seq")
    assert seen["bad"] == []
    assert seen["partial"] > 0  # after the reload, the page saw the answer still streaming
    wait_text(page, LAST_ANSWER, r"\bw700\b")
    assert norm(page.locator(LAST_ANSWER).get_by_test_id("message-text").inner_text()) == numbered(700)
    assert store_state(page, session) == server.state(session, token_of(page, session))


# Checks on every frame that the conversation shown holds none of the other one's words.
CROSS_PROBE = """
(forbidden) => {
  const bad = (window.__cross = []);
  const check = () => {
    const view = document.querySelector('[data-testid=session]');
    if (view) {
      const pattern = forbidden[view.dataset.sessionId];
      const text = view.textContent;
      if (pattern && new RegExp(pattern).test(text)) {
        bad.push({ session: view.dataset.sessionId, text: text.slice(0, 200) });
      }
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
}
"""


def test_two_conversations_streaming_at_once_never_show_each_others_text(
    context: BrowserContext, page: Page, server: Server
) -> None:
    numbers = new_session(page, server)
    echo_page = context.new_page()
    zulu = new_session(echo_page, server)
    forbidden = {numbers: r"zulu", zulu: r"\bw\d+\b"}
    for tab in (page, echo_page):
        tab.evaluate(CROSS_PROBE, forbidden)
    send(page, "/long 400")
    start_job(page, "/long 200")
    send(echo_page, " ".join(["zulu"] * 120))
    start_job(echo_page, "zulu yankee")
    # Switch the first tab to the other conversation and back while both stream.
    last_answer_has(page, "w20")
    # A person clicks in the tab they look at: bring it to the front, or Chromium may not render its
    # frames while the other tab is in front (the final screenshot then shows what the wait missed).
    page.bring_to_front()
    page.locator(f"[data-testid=session-item][data-session-id={zulu}]").click()
    page.locator(f"[data-testid=session][data-session-id={zulu}]").wait_for()
    # Scoped to the conversation shown: a bare get_by_text(...).first could pick a match that is not visible.
    shown = page.locator(f"[data-testid=session][data-session-id={zulu}] [data-testid=message-text]")
    shown.filter(has_text="You said: zulu").first.wait_for()
    screenshot(page, "switched")
    page.locator(f"[data-testid=session-item][data-session-id={numbers}]").click()
    page.locator(f"[data-testid=session][data-session-id={numbers}]").wait_for()
    wait_turns_done(page, 1)
    wait_turns_done(echo_page, 1)
    wait_jobs_done(page, 1)
    wait_jobs_done(echo_page, 1)
    assert page.evaluate("() => window.__cross") == []
    assert echo_page.evaluate("() => window.__cross") == []
    assert norm(page.locator(LAST_ANSWER).get_by_test_id("message-text").inner_text()) == numbered(400)
    assert norm(echo_page.locator(LAST_ANSWER).inner_text()) == "You said: " + " ".join(["zulu"] * 120)
    assert "Working on: zulu yankee" in echo_page.get_by_test_id("jobs").inner_text()
    for tab, session in ((page, numbers), (echo_page, zulu)):
        state = server.state(session, token_of(tab, session))
        assert store_state(tab, session) == state


def test_more_conversations_than_connections_stream_at_once_over_one_websocket(page: Page, server: Server) -> None:
    # Browsers allow ~6 connections per host: 8 conversations streaming at once in one tab need the
    # one WebSocket. Each answers a different number of numbered words, so a record applied to the
    # wrong conversation would show as a broken or too long sequence.
    sockets: list[str] = []
    event_streams: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on("request", lambda r: "/events" in r.url and event_streams.append(r.url))
    page.add_init_script(SEQUENCE_PROBE)
    sessions = [new_session(page, server)]
    for _ in range(7):
        page.get_by_test_id("new-session").click()
        page.wait_for_function(
            "(known) => { const v = document.querySelector('[data-testid=session]');"
            " return !!v && !known.includes(v.dataset.sessionId)"
            " && v.querySelector('[data-testid=connection]').dataset.state === 'live'; }",
            arg=sessions,
        )
        sessions.append(str(page.get_by_test_id("session").get_attribute("data-session-id")))
    words = {session: 200 + 25 * i for i, session in enumerate(sessions)}
    for session, n in words.items():
        server.send(session, token_of(page, session), f"/long {n}")
    # At one moment, every conversation is streaming into its own store.
    page.wait_for_function(
        """(ids) => ids.every((id) => {
            const s = window.sessionwire.state(id);
            const m = s && s.messages[s.message_order[s.message_order.length - 1]];
            return !!m && m.role === 'assistant' && m.status === 'streaming'
                && (m.parts[0]?.text ?? '').includes('w5 ');
        })""",
        arg=sessions,
        timeout=20_000,
    )
    # Show each of them while they stream.
    for session in sessions:
        page.locator(f"[data-testid=session-item][data-session-id={session}]").click()
        page.locator(f"[data-testid=session][data-session-id={session}] [data-testid=message-text]").last.wait_for()
    screenshot(page, "eight-conversations")
    link = page.evaluate("() => window.sessionwire.link()")
    assert link["transport"] == "ws" and link["sessions"] == len(sessions)
    assert page.get_by_test_id("link").get_attribute("data-transport") == "ws"
    for session, n in words.items():
        page.locator(f"[data-testid=session-item][data-session-id={session}]").click()
        view = page.locator(f"[data-testid=session][data-session-id={session}]")
        assert view.get_by_test_id("connection").get_attribute("data-transport") == "ws"
        wait_turns_done(page, 1)
        assert norm(view.locator(LAST_ANSWER).get_by_test_id("message-text").inner_text()) == numbered(n)
        assert store_state(page, session) == server.state(session, token_of(page, session))
    assert page.evaluate("() => window.__seq.bad") == []
    assert len(sockets) == 1 and sockets[0].endswith("/v1/ws")
    assert event_streams == []
