"""Opening a conversation in any browser: the link that carries its token, and the "open a conversation" form."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

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
    token_of,
    turns,
    wait_live,
    wait_text,
    wait_turns_done,
)

pytestmark = PLAYWRIGHT_WARNINGS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("web-links"))


# Every address the page went to without loading (a new hash, or back and forward), as it was then.
ADDRESSES = """
window.__addresses = [];
for (const type of ['hashchange', 'popstate']) addEventListener(type, () => window.__addresses.push(location.href));
"""


def assert_token_never_in_address(page: Page, token: str) -> None:
    """Neither the address now nor one the page navigated to carries the token."""
    addresses = page.evaluate("() => [location.href, ...window.__addresses]")
    assert not [a for a in addresses if "token=" in a or token in a], addresses


def known_ids(page: Page) -> list[str]:
    return page.evaluate(  # type: ignore[no-any-return]
        "() => (JSON.parse(localStorage.getItem('sessionwire.sessions')) ?? []).map(s => s.id)"
    )


def test_a_shared_link_opens_the_conversation_in_another_browser_and_streams_into_it(
    page: Page, browser: Browser, server: Server
) -> None:
    session = new_session(page, server)
    send(page, "hello from the first browser")
    wait_turns_done(page, 1)
    page.get_by_test_id("share").click()
    dialog = page.get_by_test_id("share-dialog")
    link = page.get_by_test_id("share-link").input_value()
    assert link == f"{server.url}/#/s/{session}?token={token_of(page, session)}"
    assert "anyone who has it can read this conversation and act in it" in dialog.inner_text()
    screenshot(page, "share")
    page.keyboard.press("Escape")
    assert dialog.count() == 0

    other = browser.new_context()  # another browser: nothing in its storage
    try:
        far = other.new_page()
        far.add_init_script(SEQUENCE_PROBE)
        far.goto(link)
        wait_live(far, session)
        assert "token" not in far.evaluate("() => location.hash")  # kept, and out of the address bar
        assert known_ids(far) == [session]
        wait_text(far, "[data-testid=conversation]", "You said: hello from the first browser")
        # A turn sent in the first browser streams into the second.
        send(page, "/long 400")
        far.locator("[data-testid=message][data-role=assistant][data-status=streaming]").wait_for()
        wait_turns_done(far, 2)
        answer = turns(far).nth(1).locator("[data-testid=message][data-role=assistant]")
        assert norm(answer.get_by_test_id("message-text").inner_text()) == numbered(400)
        seen = far.evaluate("() => window.__seq")
        assert seen["bad"] == [] and seen["partial"] > 0  # it was watched mid-stream
        # The link is the conversation's capability: the second browser acts in it too.
        send(far, "and hello back")
        wait_turns_done(page, 3)
        assert "You said: and hello back" in turns(page).nth(2).inner_text()
        # It stays in that browser's list.
        far.reload()
        wait_live(far, session)
        assert far.locator(f"[data-testid=session-item][data-session-id='{session}']").count() == 1
    finally:
        other.close()


def test_a_conversation_created_elsewhere_opens_from_its_id_and_token(browser: Browser, server: Server) -> None:
    session, token = server.create_session("made with the CLI")  # as `sessionwire new` does, over HTTP
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    try:
        page = context.new_page()
        page.add_init_script(ADDRESSES)
        # Its address alone: this browser has no token, and says how to get in.
        page.goto(f"{server.url}/#/s/{session}")
        page.get_by_test_id("missing-token").wait_for()
        entries = page.evaluate("() => history.length")
        assert session in page.get_by_test_id("missing-token").inner_text()
        assert page.get_by_test_id("open-target").input_value() == session
        page.get_by_test_id("open-submit").click()
        assert "token" in page.get_by_test_id("open-error").inner_text()
        page.get_by_test_id("open-token").fill(token)
        page.get_by_test_id("open-submit").click()
        wait_live(page, session)
        wait_text(page, "[data-testid=session-title]", "^made with the CLI$")
        assert known_ids(page) == [session]
        # The token went to this browser's storage, never into an address it navigated to.
        assert_token_never_in_address(page, token)
        assert page.evaluate("() => history.length") == entries  # already at its address: no navigation

        # From the sidebar: paste a link (no token field needed), or refuse what cannot be opened.
        second, second_token = server.create_session("second")
        page.get_by_test_id("open-session").click()
        dialog = page.get_by_test_id("open-dialog")
        dialog.get_by_test_id("open-target").fill("https://elsewhere.example/#/s/x?token=y")
        dialog.get_by_test_id("open-submit").click()
        assert "another server" in dialog.get_by_test_id("open-error").inner_text()
        dialog.get_by_test_id("open-target").fill(f"{server.url}/#/s/{second}?token={second_token}")
        dialog.get_by_test_id("open-submit").click()
        wait_live(page, second)
        assert dialog.count() == 0
        assert_token_never_in_address(page, second_token)
        assert page.evaluate("() => window.__addresses").pop() == f"{server.url}/#/s/{second}"
        assert sorted(known_ids(page)) == sorted([session, second])
        screenshot(page, "opened-from-link")
    finally:
        context.close()
