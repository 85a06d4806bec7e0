"""The web UI on a phone (390x844, touch): every control inside the viewport, reached by a tap at its centre."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from web_util import (  # noqa: F401  (fixtures are used by name)
    PLAYWRIGHT_WARNINGS,
    Server,
    assert_no_sideways_scroll,
    browser_type_launch_args,
    copied,
    focused,
    norm,
    numbered,
    screenshot,
    serve,
    stream_on,
    tap_control,
    turns,
    wait_live,
    wait_text,
    wait_turns_done,
)

pytestmark = PLAYWRIGHT_WARNINGS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("web-phone"))


@pytest.fixture
def phone(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    try:
        yield context.new_page()
    finally:
        context.close()


def type_and_send(page: Page, text: str) -> None:
    page.get_by_test_id("composer-input").fill(text)
    tap_control(page, "send")
    page.wait_for_function("() => document.querySelector('[data-testid=composer-input]').value === ''")


def drawer_settled(page: Page, open: bool) -> None:
    """Wait until the drawer has slid all the way in (or out)."""
    page.wait_for_function(
        """(open) => {
            const s = getComputedStyle(document.querySelector('[data-testid=sidebar]'));
            return open ? s.transform === 'none' && s.visibility === 'visible' : s.visibility === 'hidden';
        }""",
        arg=open,
    )


def test_a_whole_conversation_on_a_phone(phone: Page, server: Server) -> None:
    page = phone
    page.goto(server.url + "/")
    page.get_by_test_id("welcome").wait_for()
    assert "conversations" in str(page.get_by_test_id("menu").get_attribute("aria-label")).lower()
    assert not page.get_by_test_id("sidebar").is_visible()  # a drawer, closed
    assert_no_sideways_scroll(page)

    # A new conversation from the drawer.
    tap_control(page, "menu")
    drawer_settled(page, True)
    screenshot(page, "phone-drawer")
    tap_control(page, "new-session")
    session = page.locator("[data-testid=session] [data-testid=connection][data-state=live]")
    session.wait_for(timeout=10_000)
    drawer_settled(page, False)
    assert page.evaluate("() => document.activeElement?.dataset.testid") == "composer-input"
    composer = page.get_by_test_id("composer").bounding_box()
    assert composer is not None and composer["width"] >= 370  # the composer spans the width
    assert_no_sideways_scroll(page)

    # Send, and watch the answer stream.
    type_and_send(page, "/long 300")
    page.locator("[data-testid=message][data-role=assistant][data-status=streaming]").wait_for()
    assert_no_sideways_scroll(page)
    wait_turns_done(page, 1)
    answer = page.locator("[data-testid=conversation] [data-testid=message][data-role=assistant]")
    assert norm(answer.get_by_test_id("message-text").inner_text()) == numbered(300)

    # Approve and Deny.
    type_and_send(page, "/approve deploy")
    page.get_by_test_id("approve").wait_for()
    assert_no_sideways_scroll(page)
    screenshot(page, "phone-approval")
    tap_control(page, "approve")
    wait_turns_done(page, 2)
    assert "Approved, so I did it" in turns(page).nth(1).inner_text()
    type_and_send(page, "/approve wipe the disk")
    page.locator("[data-testid=approval][data-status=pending]").wait_for()
    tap_control(page, "deny", scope="[data-testid=approval][data-status=pending]")
    wait_turns_done(page, 3)
    assert "Denied, so I did not wipe the disk" in turns(page).nth(2).inner_text()

    # Stop a long turn.
    type_and_send(page, "/long 2000")
    wait_text(page, "[data-testid=turn][data-status=running] [data-role=assistant]", r"\bw20\b")
    assert_no_sideways_scroll(page)
    screenshot(page, "phone-streaming")
    tap_control(page, "stop", scope="[data-testid=turn][data-status=running]")
    wait_turns_done(page, 4)
    assert turns(page).nth(3).get_attribute("data-status") == "cancelled"

    # A job: behind the header's Jobs button, its title whole, Cancel in reach.
    page.get_by_test_id("composer-input").fill("/long 2000")
    tap_control(page, "start-job")
    tap_control(page, "jobs-toggle")
    job = page.locator("[data-testid=job][data-status=running]")
    job.wait_for()
    wait_text(page, "[data-testid=job] [data-testid=job-output]", r"\bw10\b")
    title = job.get_by_test_id("job-title")
    assert title.inner_text() == "/long 2000"
    assert title.evaluate("(e) => e.scrollWidth <= e.clientWidth")  # not cut to "m…"
    assert_no_sideways_scroll(page)
    screenshot(page, "phone-jobs")
    tap_control(page, "job-cancel")
    page.locator("[data-testid=job][data-status=cancelled]").wait_for()
    tap_control(page, "jobs-close")
    assert not page.get_by_test_id("jobs").is_visible()

    # The share dialog fits too, and its button copies the link.
    tap_control(page, "share")
    tap_control(page, "copy-link")
    copied(page.get_by_test_id("copy-link"), page.get_by_test_id("share-link").input_value(), label="Copied")
    assert page.get_by_test_id("share-warning").is_visible()
    assert_no_sideways_scroll(page)
    screenshot(page, "phone-share")
    tap_control(page, "dialog-close")
    assert page.get_by_test_id("share-dialog").count() == 0


def test_the_chat_controls_on_a_phone(phone: Page, server: Server) -> None:
    page = phone
    cancels: list[str] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/cancel") and cancels.append(r.url))
    page.goto(server.url + "/")
    tap_control(page, "welcome-open")  # the welcome page's way to open one: its dialog closes with its button
    tap_control(page, "dialog-close")
    assert page.get_by_test_id("open-dialog").count() == 0
    tap_control(page, "menu")
    drawer_settled(page, True)
    tap_control(page, "new-session")
    page.locator("[data-testid=session] [data-testid=connection][data-state=live]").wait_for(timeout=10_000)
    first = str(page.get_by_test_id("session").get_attribute("data-session-id"))
    tap_control(page, "rename")
    page.get_by_test_id("rename-input").fill("on the phone")
    tap_control(page, "rename-save")
    wait_text(page, "[data-testid=session-title]", "^on the phone$")

    # Copy a code block and a message.
    type_and_send(page, "Here:\n```python\nx = 1\n```")
    wait_turns_done(page, 1)
    answer = page.locator("[data-testid=conversation] [data-testid=message][data-role=assistant]")
    answer.locator("code.hljs").wait_for()
    tap_control(page, "copy-code", scope="[data-testid=conversation] [data-role=assistant]")
    copied(answer.get_by_test_id("copy-code"), "x = 1")
    tap_control(page, "copy-message", scope="[data-testid=conversation] [data-role=user]")
    user = page.locator("[data-testid=conversation] [data-role=user]")
    copied(user.get_by_test_id("copy-message"), "Here:\n```python\nx = 1\n```")

    # Retry a failed turn.
    type_and_send(page, "/fail")
    wait_turns_done(page, 2)
    tap_control(page, "retry", scope="[data-testid=turn][data-status=failed]")
    wait_turns_done(page, 3)
    assert turns(page).nth(2).get_attribute("data-status") == "failed"

    # While a turn runs: a queued message taken back, the way back to the latest words.
    type_and_send(page, "/long 20000")
    wait_text(page, "[data-testid=turn][data-status=running] [data-role=assistant]", r"\bw300\b")
    type_and_send(page, "never mind")
    tap_control(page, "queued-cancel")
    page.locator("[data-testid=turn][data-status=cancelled]").wait_for()
    assert page.get_by_test_id("queued-message").count() == 0
    page.get_by_test_id("conversation").evaluate("(e) => { e.scrollTop = 0; e.dispatchEvent(new Event('scroll')); }")
    tap_control(page, "jump-latest")
    page.get_by_test_id("jump-latest").wait_for(state="hidden")

    # Esc closes what covers the conversation, wherever the focus is, and stops no turn: the drawer
    # (the page behind it takes no focus) ...
    asked = len(cancels)
    tap_control(page, "menu")
    drawer_settled(page, True)
    page.get_by_test_id("composer-input").focus()
    assert focused(page) != "composer-input"
    page.keyboard.press("Escape")
    drawer_settled(page, False)
    assert focused(page) == "menu"
    # ... and the jobs sheet, which took the focus and gives it back to its button.
    tap_control(page, "jobs-toggle")
    assert page.get_by_test_id("jobs").is_visible()
    assert focused(page) == "jobs-close"
    page.get_by_test_id("composer-input").focus()
    assert focused(page) != "composer-input"  # covered by the sheet
    page.keyboard.press("Escape")
    assert not page.get_by_test_id("jobs").is_visible()
    assert focused(page) == "jobs-toggle"
    stream_on(page, 100, turn=3)
    assert len(cancels) == asked
    assert turns(page).nth(3).get_attribute("data-status") == "running"
    tap_control(page, "stop", scope="[data-testid=turn][data-status=running]")
    wait_turns_done(page, 5)

    # Open a conversation made elsewhere from its link, then go back to the first from the list.
    other, token = server.create_session("made elsewhere")
    tap_control(page, "menu")
    drawer_settled(page, True)
    tap_control(page, "open-session")
    page.get_by_test_id("open-target").fill(f"{server.url}/#/s/{other}?token={token}")
    tap_control(page, "open-submit")
    wait_live(page, other)
    assert "token" not in page.evaluate("() => location.href")
    tap_control(page, "menu")
    drawer_settled(page, True)
    items = page.get_by_test_id("session-item")
    tap_control(
        page, "session-item", nth=items.evaluate_all(f"(all) => all.findIndex(e => e.dataset.sessionId === '{first}')")
    )
    wait_live(page, first)
    drawer_settled(page, False)
    assert_no_sideways_scroll(page)
