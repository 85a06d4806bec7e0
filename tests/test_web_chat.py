"""What a chat UI is expected to do around the stream: copy, highlighted code, lines kept, jump to latest,
Esc, retry, an idle sidebar, focus, a collapsible sidebar."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from web_util import (  # noqa: F401  (fixtures are used by name)
    PLAYWRIGHT_WARNINGS,
    Server,
    browser_context_args,
    browser_type_launch_args,
    copied,
    focused,
    new_session,
    screenshot,
    send,
    serve,
    stream_on,
    token_of,
    turns,
    wait_text,
    wait_turns_done,
)

pytestmark = PLAYWRIGHT_WARNINGS

CODE = "def add(a, b):\n    return a + b  # the sum"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # 1 ms a token: a screenful of words comes fast, and /long 20000 still runs long enough to stop.
    yield from serve(tmp_path_factory.mktemp("web-chat"), token_delay_ms=1)


def test_code_is_highlighted_once_loaded_and_copy_buttons_fill_the_clipboard(browser: Browser, server: Server) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    try:
        page = context.new_page()
        chunks: list[str] = []
        page.on("request", lambda r: "/assets/hljs-" in r.url and chunks.append(r.url))
        new_session(page, server)
        assert chunks == []  # the first paint did not wait for highlight.js
        send(page, f"Here:\n```python\n{CODE}\n```")
        wait_turns_done(page, 1)
        answer = page.locator("[data-testid=conversation] [data-testid=message][data-role=assistant]")
        block = answer.locator(".code-block")
        block.locator("code.hljs.language-python .hljs-keyword").first.wait_for()
        assert block.locator(".hljs-keyword").first.inner_text() == "def"
        assert block.get_attribute("data-lang") == "python"
        label = block.locator(".code-lang").evaluate("(e) => getComputedStyle(e, '::before').content")
        assert label == '"python"'
        assert len(chunks) == 1  # loaded once, on demand
        screenshot(page, "code")

        block.get_by_test_id("copy-code").click()
        copied(block.get_by_test_id("copy-code"), CODE)

        answer.hover()
        answer.get_by_test_id("copy-message").click()
        copied(answer.get_by_test_id("copy-message"), f"You said: Here:\n```python\n{CODE}\n```")
        user = page.locator("[data-testid=conversation] [data-testid=message][data-role=user]")
        user.hover()
        user.get_by_test_id("copy-message").click()
        copied(user.get_by_test_id("copy-message"), f"Here:\n```python\n{CODE}\n```")

        # Where navigator.clipboard refuses (or is missing: plain HTTP to a LAN address, as from a
        # phone) the old way copies; the focus stays where it was (a phone keeps its keyboard up for
        # the composer), and a screen reader hears that it copied.
        page.evaluate(
            """() => {
                const clip = navigator.clipboard;
                window.__write = clip.writeText.bind(clip);
                clip.writeText = () => Promise.reject(new Error('refused'));
                return window.__write('stale');
            }"""
        )
        page.get_by_test_id("composer-input").focus()
        button = block.get_by_test_id("copy-code")
        button.dispatch_event("click")  # a tap that leaves the focus where it is, as on a phone
        copied(button, CODE)
        assert page.evaluate("() => document.activeElement?.dataset.testid") == "composer-input"
        page.wait_for_function("() => document.querySelector('[data-testid=announce]')?.textContent === 'Copied'")
        announcer = page.get_by_test_id("announce")
        assert announcer.get_attribute("aria-live") == "polite" and announcer.get_attribute("role") == "status"
        # Clicked, the button keeps the focus it took.
        page.evaluate("() => window.__write('stale')")
        user.hover()
        user.get_by_test_id("copy-message").click()
        copied(user.get_by_test_id("copy-message"), f"Here:\n```python\n{CODE}\n```")
        assert page.evaluate("() => document.activeElement?.dataset.testid") == "copy-message"
    finally:
        context.close()


def test_a_persons_text_shows_as_typed(page: Page, server: Server) -> None:
    new_session(page, server)
    send(page, "line one\nline two\n  indented *not emphasis*")
    wait_turns_done(page, 1)
    text = page.locator("[data-testid=message][data-role=user] [data-testid=message-text]")
    assert text.inner_text() == "line one\nline two\n  indented *not emphasis*"
    assert text.locator("em").count() == 0


# An Esc that an input method takes while it composes: flagged as composing (Chromium, Firefox), or
# with the key code 229 (Safari).
IME_ESCAPES = """(box) => {
    box.focus();
    box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', isComposing: true, bubbles: true }));
    const safari = new KeyboardEvent('keydown', { key: 'Escape', bubbles: true });
    Object.defineProperty(safari, 'keyCode', { value: 229 });
    box.dispatchEvent(safari);
}"""


def focus_in(page: Page, testid: str) -> bool:
    """Whether the focus is inside the element with this test id."""
    return bool(page.evaluate(f"() => !!document.activeElement?.closest('[data-testid={testid}]')"))


def test_esc_stops_the_running_turn_and_jump_to_latest_follows_again(page: Page, server: Server) -> None:
    cancels: list[str] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/cancel") and cancels.append(r.url))
    new_session(page, server)
    send(page, "/long 20000")
    wait_text(page, "[data-testid=turn][data-status=running] [data-role=assistant]", r"\bw600\b")
    # Scrolled up to read: the view stays put, and offers the way back.
    conversation = page.get_by_test_id("conversation")
    conversation.evaluate("(e) => { e.scrollTop = 0; e.dispatchEvent(new Event('scroll')); }")
    jump = page.get_by_test_id("jump-latest")
    jump.wait_for()
    wait_text(page, "[data-testid=turn][data-status=running] [data-role=assistant]", r"\bw900\b")
    assert conversation.evaluate("(e) => e.scrollTop") == 0
    screenshot(page, "jump-to-latest")
    jump.click()
    page.wait_for_function(
        "() => { const e = document.querySelector('[data-testid=conversation]');"
        " return e.scrollHeight - e.scrollTop - e.clientHeight < 80; }"
    )
    assert jump.is_hidden()

    # Esc in another field means "never mind" there: the turn runs on.
    page.get_by_test_id("rename").click()
    page.get_by_test_id("rename-input").press("Escape")
    page.get_by_test_id("user-name").press("Escape")
    # Esc while an input method composes drops its candidate text, nothing more.
    page.get_by_test_id("composer-input").evaluate(IME_ESCAPES)
    # A dialog keeps the focus inside while Tab goes round, and Esc closes it, wherever the focus is.
    page.get_by_test_id("open-session").click()
    for key in ["Tab"] * 5 + ["Shift+Tab"] * 7:
        page.keyboard.press(key)
        assert focus_in(page, "open-dialog"), key
    page.get_by_test_id("composer-input").focus()  # taken behind the dialog (by a script, say)
    page.keyboard.press("Escape")
    assert page.get_by_test_id("open-dialog").count() == 0
    page.get_by_test_id("share").click()
    page.keyboard.press("Escape")
    assert page.get_by_test_id("share-dialog").count() == 0
    # None of them stopped the turn: its words go on, and no cancel was asked.
    stream_on(page, 300)
    assert cancels == []
    assert turns(page).nth(0).get_attribute("data-status") == "running"
    # Esc in the composer (or anywhere else) stops it.
    page.get_by_test_id("composer-input").press("Escape")
    wait_turns_done(page, 1)
    assert turns(page).nth(0).get_attribute("data-status") == "cancelled"
    assert len(cancels) == 1


def test_a_failed_turn_can_be_retried(page: Page, server: Server) -> None:
    sent: list[str] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/turns") and sent.append(r.url))
    session = new_session(page, server)
    send(page, "/fail")
    wait_turns_done(page, 1)
    assert turns(page).nth(0).get_attribute("data-status") == "failed"
    turns(page).nth(0).get_by_test_id("retry").click()
    wait_turns_done(page, 2)
    # Sent once more, and only once: the server has the two turns.
    assert len(sent) == 2
    assert len(server.state(session, token_of(page, session))["turns"]) == 2
    retried = turns(page).nth(1)
    assert retried.locator("[data-role=user]").inner_text().strip() == "/fail"
    wait_text(page, "[data-testid=turn]:nth-of-type(2) [data-role=assistant]", "This turn is about to fail")
    # Retry is offered on the last turn only: the first one's went with it.
    assert turns(page).nth(0).get_by_test_id("retry").is_hidden()
    assert retried.get_by_test_id("retry").is_visible()
    screenshot(page, "retry")


def test_the_sidebar_is_idle_without_a_conversation_collapses_and_a_new_one_takes_the_focus(
    page: Page, server: Server
) -> None:
    page.goto(server.url + "/")
    link = page.get_by_test_id("link")
    assert link.get_attribute("data-state") == "idle"
    assert link.inner_text() == "No conversation open"
    assert "connecting" not in link.inner_text()
    page.get_by_test_id("new-session").click()
    page.locator("[data-testid=connection][data-state=live]").wait_for()
    assert page.evaluate("() => document.activeElement?.dataset.testid") == "composer-input"
    assert "WebSocket open" in link.inner_text()
    first = page.locator("[data-testid=session]").get_attribute("data-session-id")
    # Another one takes the focus too; coming back to either later leaves the focus where it is (on a
    # phone the keyboard would come up each time).
    page.get_by_test_id("new-session").click()
    page.locator(
        f"[data-testid=session]:not([data-session-id='{first}']) [data-testid=connection][data-state=live]"
    ).wait_for()
    assert focused(page) == "composer-input"
    second = page.locator("[data-testid=session]").get_attribute("data-session-id")
    for session in (first, second):
        page.locator(f"[data-testid=session-item][data-session-id='{session}']").click()
        page.locator(
            f"[data-testid=session][data-session-id='{session}'] [data-testid=connection][data-state=live]"
        ).wait_for()
        assert focused(page) == "session-item"

    before = page.get_by_test_id("conversation").bounding_box()
    page.get_by_test_id("sidebar-close").click()
    assert not page.get_by_test_id("sidebar").is_visible()
    assert focused(page) == "menu"  # not a button that went with the list
    page.get_by_test_id("menu").click()
    assert focused(page) == "new-session"
    page.get_by_test_id("sidebar-close").click()
    after = page.get_by_test_id("conversation").bounding_box()
    assert before is not None and after is not None and after["width"] > before["width"]
    page.reload()
    page.locator("[data-testid=connection][data-state=live]").wait_for()
    assert not page.get_by_test_id("sidebar").is_visible()  # remembered
    screenshot(page, "sidebar-hidden")
    page.get_by_test_id("menu").click()
    assert page.get_by_test_id("sidebar").is_visible()
    assert not page.get_by_test_id("menu").is_visible()
