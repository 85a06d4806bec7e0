"""The web UI's controls in a real browser: approvals, Stop, Cancel, the turn policy, reconnects, safety."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from web_util import (  # noqa: F401  (fixtures are used by name)
    PLAYWRIGHT_WARNINGS,
    SEQUENCE_PROBE,
    Server,
    browser_context_args,
    browser_type_launch_args,
    new_session,
    norm,
    numbered,
    screenshot,
    send,
    serve,
    start_job,
    token_of,
    turns,
    wait_text,
    wait_turns_done,
)

pytestmark = PLAYWRIGHT_WARNINGS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("web-controls"))


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Rejects a turn while another runs; approvals expire after a second."""
    yield from serve(tmp_path_factory.mktemp("web-strict"), policy="reject", approval_timeout=1.0)


def test_approve_and_deny_from_the_page_show_who_resolved(page: Page, server: Server) -> None:
    new_session(page, server)
    page.get_by_test_id("user-name").fill("ann")
    page.get_by_test_id("user-name").press("Tab")
    send(page, "/approve deploy the site")
    approval = page.locator("[data-testid=approval]").nth(0)
    approval.get_by_test_id("approve").wait_for()
    assert approval.get_by_test_id("approval-action").inner_text() == "deploy the site"
    assert approval.get_attribute("data-status") == "pending"
    assert turns(page).nth(0).get_by_test_id("turn-status").inner_text() == "waiting for approval"
    screenshot(page, "approval-pending")
    approval.get_by_test_id("approve").click()
    wait_turns_done(page, 1)
    assert approval.get_attribute("data-status") == "approved"
    assert approval.get_by_test_id("approval-outcome").inner_text() == "Approved by ann"
    assert not approval.get_by_test_id("approve").is_visible()
    assert "Approved, so I did it" in turns(page).nth(0).inner_text()

    send(page, "/approve wipe the disk")
    denied = page.locator("[data-testid=approval]").nth(1)
    denied.get_by_test_id("deny").click()
    wait_turns_done(page, 2)
    assert denied.get_attribute("data-status") == "denied"
    assert denied.get_by_test_id("approval-outcome").inner_text() == "Denied by ann"
    assert "Denied, so I did not wipe the disk" in turns(page).nth(1).inner_text()
    tool = turns(page).nth(1).locator("[data-testid=tool-call]")
    assert tool.get_attribute("data-status") == "denied"
    screenshot(page, "approvals")


def test_an_expired_approval_says_so(page: Page, strict_server: Server) -> None:
    new_session(page, strict_server)
    send(page, "/approve wait for nobody")
    approval = page.locator("[data-testid=approval]")
    approval.wait_for()
    wait_turns_done(page, 1)
    assert approval.get_attribute("data-status") == "expired"
    assert "Expired" in approval.get_by_test_id("approval-outcome").inner_text()
    assert not approval.get_by_test_id("approve").is_visible()
    assert "Nobody answered in time" in turns(page).nth(0).inner_text()
    screenshot(page, "approval-expired")


def test_a_turn_sent_while_one_runs_follows_the_servers_policy(page: Page, strict_server: Server) -> None:
    new_session(page, strict_server)
    send(page, "/long 3000")
    page.locator("[data-testid=turn][data-status=running]").wait_for()
    page.get_by_test_id("composer-input").fill("one more")
    page.get_by_test_id("send").click()
    notice = page.get_by_test_id("composer-notice")
    wait_text(page, "[data-testid=composer-notice]", "Not sent")
    assert "rejects new turns" in notice.inner_text()
    assert page.get_by_test_id("composer-input").input_value() == "one more"  # kept, to send later
    page.get_by_test_id("stop").click()
    wait_turns_done(page, 1)
    assert turns(page).count() == 1


def test_a_turn_sent_while_one_runs_shows_at_once_as_queued(page: Page, server: Server) -> None:
    new_session(page, server)
    send(page, "/long 3000")
    page.locator("[data-testid=turn][data-status=running]").wait_for()
    send(page, "queued one")
    send(page, "queued two")
    # Shown at once in the sending tab, with its text, marked queued: before its turn starts.
    queued = page.get_by_test_id("queued-message")
    queued.nth(1).wait_for()
    assert [norm(t) for t in queued.locator(".plain").all_inner_texts()] == ["queued one", "queued two"]
    assert all("Queued" in t for t in queued.get_by_test_id("queued-status").all_inner_texts())
    assert turns(page).count() == 1
    assert page.get_by_test_id("composer-notice").is_hidden()  # the bubble says it: no notice with a turn id
    screenshot(page, "queued")
    # A queued message can be taken back before it starts: its turn ends cancelled, the other stays queued.
    queued.nth(1).get_by_test_id("queued-cancel").click()
    page.locator("[data-testid=turn][data-status=cancelled]").wait_for()
    assert "queued two" in turns(page).nth(1).inner_text()
    assert queued.count() == 1 and norm(queued.inner_text()).startswith("queued one")
    turns(page).nth(0).get_by_test_id("stop").click()
    wait_turns_done(page, 3)
    assert turns(page).nth(0).get_attribute("data-status") == "cancelled"
    assert "You said: queued one" in turns(page).nth(2).inner_text()
    # Its turn started: the real one replaced it.
    assert queued.count() == 0


def test_stop_a_turn(page: Page, server: Server) -> None:
    page.add_init_script(SEQUENCE_PROBE)
    new_session(page, server)
    send(page, "/long 4000")
    wait_text(page, "[data-testid=conversation] [data-testid=message][data-role=assistant]", r"\bw30\b")
    stop = page.get_by_test_id("stop")
    stop.click()
    wait_turns_done(page, 1)
    turn = turns(page).nth(0)
    assert turn.get_attribute("data-status") == "cancelled"
    assert turn.get_by_test_id("turn-status").inner_text() == "cancelled"
    assert not stop.is_visible()
    answer = turn.locator("[data-testid=message][data-role=assistant]")
    assert answer.get_attribute("data-status") != "streaming"
    words = norm(answer.inner_text()).split()
    assert 30 <= len(words) < 4000
    assert words == numbered(len(words)).split()
    assert page.evaluate("() => window.__seq.bad") == []
    screenshot(page, "stopped")


def test_cancel_a_job(page: Page, server: Server) -> None:
    new_session(page, server)
    start_job(page, "/long 4000")
    job = page.locator("[data-testid=job]")
    wait_text(page, "[data-testid=job] [data-testid=job-output]", r"\bw20\b")
    job.get_by_test_id("job-cancel").click()
    page.locator("[data-testid=job][data-status=cancelled]").wait_for()
    assert job.get_by_test_id("job-status").inner_text() == "cancelled"
    assert not job.get_by_test_id("job-cancel").is_visible()
    done = int(job.get_by_test_id("job-progress-text").inner_text().split("/")[0])
    assert 20 <= done < 4000
    output = norm(job.get_by_test_id("job-output").inner_text()).split()
    assert output == numbered(len(output)).split()
    # An ended job's bar shows its final progress at once (no transition left running).
    widths = page.evaluate(BAR_WIDTHS)
    total = int(job.get_by_test_id("job-progress-text").inner_text().split("/")[1].split()[0])
    assert widths[0]["bar"] == pytest.approx(widths[0]["track"] * round(100 * done / total) / 100, abs=1)
    screenshot(page, "job-cancelled")


# The width of each job's progress bar and of its track, as the page renders them now.
BAR_WIDTHS = """() => [...document.querySelectorAll('[data-testid=job-progress]')].map((track) => ({
    track: track.getBoundingClientRect().width,
    bar: track.querySelector('.bar').getBoundingClientRect().width,
    status: track.closest('[data-testid=job]').dataset.status,
}))"""


def test_a_finished_jobs_bar_is_full_at_once(page: Page, server: Server) -> None:
    new_session(page, server)
    send(page, "/job 40 Short count")
    page.locator("[data-testid=job][data-status=completed]").wait_for(timeout=20_000)
    widths = page.evaluate(BAR_WIDTHS)
    assert widths == [{"track": widths[0]["track"], "bar": widths[0]["track"], "status": "completed"}], widths
    assert norm(page.get_by_test_id("job-progress-text").inner_text()).startswith("40 / 40")
    screenshot(page, "job-completed")


def test_markdown_is_rendered_and_model_html_is_not(page: Page, server: Server) -> None:
    new_session(page, server)
    page.evaluate("() => { window.__pwned = 0; }")
    send(page, "**bold** `code` <img src=x onerror=window.__pwned=1> [x](javascript:window.__pwned=2)")
    wait_turns_done(page, 1)
    answer = page.locator("[data-testid=conversation] [data-testid=message][data-role=assistant]")
    assert answer.locator("strong").inner_text() == "bold"
    assert answer.locator("code").inner_text() == "code"
    assert answer.locator("img").count() == 0
    assert "<img src=x" in answer.inner_text()
    assert answer.locator("a").count() == 0
    assert page.evaluate("() => window.__pwned") == 0


def test_the_page_shows_a_lost_connection_and_resumes_after_a_restart(page: Page, tmp_path: Path) -> None:
    server = Server(tmp_path / "restart.db").start()
    try:
        page.add_init_script(SEQUENCE_PROBE)
        session = new_session(page, server)
        send(page, "/long 5000")
        wait_text(page, "[data-testid=conversation] [data-testid=message][data-role=assistant]", r"\bw20\b")
        server.kill()  # as a crash would: the turn is left open
        connection = page.locator("[data-testid=session] [data-testid=connection]")
        page.locator("[data-testid=connection][data-state=reconnecting]").wait_for()
        assert "reconnecting" in connection.inner_text()
        screenshot(page, "reconnecting")
        server.start()  # same port, same log: start-up marks the dead turn interrupted
        page.locator("[data-testid=connection][data-state=live]").wait_for(timeout=20_000)
        page.locator("[data-testid=turn][data-status=interrupted]").wait_for(timeout=20_000)
        words = norm(page.locator("[data-testid=message][data-role=assistant]").inner_text()).split()
        assert words == numbered(len(words)).split()
        assert page.evaluate("() => window.__seq.bad") == []
        state = server.state(session, token_of(page, session))
        assert page.evaluate("(id) => window.sessionwire.state(id)", session) == state
        send(page, "back again")
        wait_turns_done(page, 2)
        assert "You said: back again" in turns(page).nth(1).inner_text()
    finally:
        server.stop()


def test_the_page_falls_back_to_eventsource_when_the_websocket_is_refused(page: Page, server: Server) -> None:
    # As a server whose origin check refuses the page would: close the socket as a policy violation.
    page.route_web_socket("**/v1/ws", lambda ws: ws.close(code=1008, reason="origin not allowed"))
    event_streams: list[str] = []
    page.on("request", lambda r: "/events" in r.url and event_streams.append(r.url))
    page.add_init_script(SEQUENCE_PROBE)
    session = new_session(page, server)
    link = page.get_by_test_id("link")
    page.locator("[data-testid=link][data-transport=sse]").wait_for()
    assert "EventSource" in link.inner_text()
    assert "origin not allowed" in str(link.get_attribute("title"))
    send(page, "/long 150")
    wait_turns_done(page, 1)
    answer = page.locator("[data-testid=conversation] [data-testid=message][data-role=assistant]")
    assert norm(answer.get_by_test_id("message-text").inner_text()) == numbered(150)
    assert page.get_by_test_id("connection").get_attribute("data-transport") == "sse"
    assert page.evaluate("() => window.__seq.bad") == []
    assert any(f"/v1/sessions/{session}/events" in url for url in event_streams)
    assert page.evaluate("(id) => window.sessionwire.state(id)", session) == server.state(
        session, token_of(page, session)
    )


def test_a_rejected_token_is_shown_and_the_conversation_can_be_forgotten(page: Page, server: Server) -> None:
    session, _token = server.create_session("secret")
    page.goto(f"{server.url}/#/s/{session}?token=not-the-token")
    connection = page.locator("[data-testid=session] [data-testid=connection]")
    page.locator("[data-testid=connection][data-state=failed]").wait_for(timeout=10_000)
    assert "token" not in page.evaluate("() => location.hash")  # not left in the address bar
    problem = page.get_by_test_id("session-problem")
    problem.wait_for()
    assert "not-the-token" not in problem.inner_text()
    assert "failed" in connection.inner_text()
    assert page.get_by_test_id("composer-input").is_disabled()
    screenshot(page, "token-rejected")
    page.get_by_test_id("forget").click()
    page.get_by_test_id("welcome").wait_for()
    assert page.locator(f"[data-testid=session-item][data-session-id={session}]").count() == 0
    assert session not in page.evaluate("() => localStorage.getItem('sessionwire.sessions')")


def test_long_words_and_code_do_not_overflow_the_page(page: Page, server: Server) -> None:
    new_session(page, server)
    send(page, "x" * 400 + " `" + "y" * 300 + "`")
    wait_turns_done(page, 1)
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=message] .bubble')].map(
            (el) => [el.scrollWidth, el.clientWidth])"""
    )
    assert sizes and all(scroll <= client for scroll, client in sizes), sizes
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_the_first_message_names_a_conversation_and_a_rename_shows_in_every_tab(page: Page, server: Server) -> None:
    session = new_session(page, server)
    send(page, "Plan the trip\nwith the details below")
    wait_text(page, "[data-testid=session-title]", "^Plan the trip$")
    other = page.context.new_page()  # a second tab of the same browser
    other.goto(f"{server.url}/#/s/{session}")
    wait_text(other, "[data-testid=session-title]", "^Plan the trip$")
    page.get_by_test_id("rename").click()
    box = page.get_by_test_id("rename-input")
    assert box.evaluate("(e) => document.activeElement === e")
    box.fill("Escape cancels")
    box.press("Escape")
    assert page.get_by_test_id("session-title").inner_text() == "Plan the trip"
    page.get_by_test_id("rename").click()
    page.get_by_test_id("rename-input").fill("Lisbon, May")
    page.get_by_test_id("rename-input").press("Enter")
    for tab in (page, other):
        wait_text(tab, "[data-testid=session-title]", "^Lisbon, May$")
        wait_text(tab, f"[data-testid=session-item][data-session-id='{session}'] .session-title", "^Lisbon, May$")
    other.close()
