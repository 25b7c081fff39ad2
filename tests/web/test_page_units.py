"""The page's own modules, exercised inside the browser: markdown's link filter and the
composer's typing renewals."""

from __future__ import annotations

import json
import time

import httpx
from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.web.conftest import People

HOSTILE_LINKS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "javascript&colon;alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "//evil.example/x",
    "/users/me",
    "file:///etc/passwd",
]


def test_markdown_links_only_to_http_https_and_mailto(server: LiveServer, people: People) -> None:
    page = people.open(server, server.register())
    texts = [f"[x]({href})" for href in HOSTILE_LINKS] + [
        "[ok](https://example.org/a?b=1)",
        "mail [me](mailto:me@example.org)",
        "bare http://example.org/x.",
    ]
    hrefs = page.evaluate(
        """async (texts) => {
            const { renderMarkdown } = await import('/static/markdown.js');
            const out = [];
            for (const text of texts) {
                const box = document.createElement('div');
                box.appendChild(renderMarkdown(text));
                out.push([...box.querySelectorAll('a')].map((a) => a.getAttribute('href')));
                if (box.querySelector('script, img, iframe')) out.push(['ELEMENT']);
            }
            return out;
        }""",
        texts,
    )
    assert hrefs[: len(HOSTILE_LINKS)] == [[] for _ in HOSTILE_LINKS], json.dumps(hrefs)
    assert hrefs[len(HOSTILE_LINKS) :] == [
        ["https://example.org/a?b=1"],
        ["mailto:me@example.org"],
        ["http://example.org/x"],  # the full stop ends the sentence, not the URL
    ]


RECORD_SENDS = """
const send = WebSocket.prototype.send;
window.__sent = [];
WebSocket.prototype.send = function (data) {
    window.__sent.push(String(data));
    return send.call(this, data);
};
"""


def test_typing_renewals_are_sent_at_most_every_two_seconds(
    server: LiveServer, people: People
) -> None:
    alice = server.register()
    page = people.open(server, alice)
    page.add_init_script(RECORD_SENDS)
    page.reload()
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    started = time.monotonic()
    page.get_by_test_id("composer-input").press_sequentially("a fairly long sentence to type")
    elapsed = time.monotonic() - started
    typing = page.evaluate(
        "() => window.__sent.map((s) => JSON.parse(s)).filter((f) => f.type === 'typing').length"
    )
    # 30 keystrokes: one renewal per started 2 s, never one per key.
    assert 1 <= typing <= 1 + int(elapsed / 2), (typing, elapsed)


def test_keyboard_only_use_and_focus_kept_across_live_updates(
    server: LiveServer, people: People
) -> None:
    alice, bob, carol = (server.register() for _ in range(3))
    page = people.open(server, alice)
    bob_button = page.locator(f'[data-testid="person"][data-username="{bob.username}"]')
    bob_button.focus()
    # Carol comes online: the people list changes under the focused button, which keeps focus.
    people.open(server, carol)
    expect(
        page.locator(f'[data-testid="person"][data-username="{carol.username}"]')
    ).to_have_attribute("data-online", "true")
    expect(bob_button).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("conversation-title")).to_have_text(
        f"Direct messages with {bob.username}"
    )
    expect(page.get_by_test_id("composer-input")).to_be_focused()
    page.keyboard.type("sent with the keyboard")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("message-body")).to_have_text(["sent with the keyboard"])


def test_a_saved_key_survives_a_server_that_cannot_answer_yet(
    server: LiveServer, people: People
) -> None:
    page = people.open(server, server.register())
    # The database is away for a moment: /users/me answers 503 to the reloaded page.
    page.route(
        "**/users/me",
        lambda route: route.fulfill(
            status=503,
            json={"detail": "Storage unavailable", "code": "storage_unavailable"},
        ),
    )
    page.reload()
    expect(page.get_by_test_id("signin-error")).to_contain_text("trying again")
    page.unroute("**/users/me")
    # The key was kept, and the page signs in by itself once the server answers.
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")


def test_every_logo_gets_its_own_generated_picture(server: LiveServer, people: People) -> None:
    page = people.open(server, server.register())
    with httpx.Client(base_url=server.http_url) as http:
        logos = http.get("/logos").json()
    drawn = page.evaluate(
        """async (logos) => {
            const { avatar, logoCells } = await import('/static/views/avatar.js');
            return logos.map((logo) => {
                const el = avatar({ username: 'x', logo });
                return {
                    cells: JSON.stringify(logoCells(logo)),
                    again: JSON.stringify(logoCells(logo)),
                    filled: el.querySelectorAll('rect').length - 1,
                    images: el.querySelectorAll('img, image, use').length,
                    colour: el.querySelector('rect:nth-child(2)')?.getAttribute('fill'),
                };
            });
        }""",
        logos,
    )
    assert len(logos) >= 2
    # The same name draws the same picture every time; no two logos look alike.
    assert all(d["cells"] == d["again"] for d in drawn)
    assert len({d["cells"] for d in drawn}) == len(logos)
    assert len({(d["cells"], d["colour"]) for d in drawn}) == len(logos)
    # Drawn, not fetched, and never (nearly) empty.
    assert all(d["images"] == 0 and d["filled"] >= 6 for d in drawn), drawn


RECORD_FETCHES = """
const fetchIt = window.fetch;
window.__fetched = [];
window.fetch = function (input, init) {
    window.__fetched.push(String(input));
    return fetchIt.call(this, input, init);
};
"""


def test_reading_is_one_mark_per_conversation_and_counts_are_never_polled(
    server: LiveServer, people: People
) -> None:
    alice, bob = server.register(), server.register()
    page = people.open(server, bob)
    # Recorded inside the document, so only the reloaded page's own calls count.
    page.add_init_script(RECORD_SENDS + RECORD_FETCHES)
    page.reload()
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    with httpx.Client(base_url=server.http_url) as http:
        for n in range(3):
            resp = http.post(
                "/messages",
                json={"content": f"dm {n}", "to_username": bob.username},
                headers={"X-API-Key": alice.api_key},
            )
            assert resp.status_code == 201
    dm = page.locator(f'[data-testid="conversation"][data-key="dm:{alice.username}"]')
    expect(dm.get_by_test_id("unread-badge")).to_have_text("3")
    dm.click()
    expect(dm.get_by_test_id("unread-badge")).to_have_count(0)
    marks = page.evaluate(
        """() => window.__sent.map((s) => JSON.parse(s))
            .filter((f) => String(f.type).startsWith('mark_')).map((f) => f.type)"""
    )
    # Three messages read with one "read up to here" for the conversation.
    assert marks.count("mark_direct_read") == 1 and "mark_read" not in marks, marks
    # The badge went 0 -> 3 -> 0 on pushed frames alone: the unread lists were read once, at
    # the start, and the counts never.
    unread_reads = [url for url in page.evaluate("() => window.__fetched") if "/unread" in url]
    assert sorted(u.split("?")[0].rsplit("/messages", 1)[1] for u in unread_reads) == [
        "/direct/unread",
        "/unread",
    ], unread_reads


CONTRAST = """() => {
    const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = (c) => {
        const [r, g, b] = rgb(c).map((v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const ratio = (a, b) => {
        const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
        return (x + 0.05) / (y + 0.05);
    };
    const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
            const bg = getComputedStyle(e).backgroundColor;
            if (bg && !bg.startsWith('rgba(0, 0, 0, 0)') && bg !== 'transparent') return bg;
        }
        return 'rgb(255, 255, 255)';
    };
    const low = [];
    for (const el of document.querySelectorAll('body *')) {
        if (el.closest('[hidden], [aria-hidden=true]') || !el.checkVisibility()) continue;
        const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
        if (!text) continue;
        const r = ratio(getComputedStyle(el).color, background(el));
        if (r < 4.5) low.push([el.dataset.testid || el.className || el.tagName, r.toFixed(2)]);
    }
    const unnamed = [...document.querySelectorAll('button, input, textarea, select')]
        .filter((el) => el.checkVisibility())
        .filter((el) => !(el.labels?.length || el.getAttribute('aria-label')
            || el.textContent.trim()))
        .map((el) => el.id || el.dataset.testid);
    return { low, unnamed };
}"""


def test_text_contrast_and_control_names_fit_screen_readers(
    server: LiveServer, people: People
) -> None:
    alice, bob = server.register(), server.register()
    page = people.open(server, alice)
    with httpx.Client(base_url=server.http_url) as http:
        http.post(
            "/messages",
            json={
                "content": "a DM with a [link](https://example.org)",
                "to_username": alice.username,
            },
            headers={"X-API-Key": bob.api_key},
        )
    expect(page.get_by_test_id("unread-badge")).not_to_have_count(0)
    found = page.evaluate(CONTRAST)
    # WCAG AA: 4.5:1 for every visible text; every control has an accessible name.
    assert found == {"low": [], "unnamed": []}, found
    page.goto(server.http_url + "/")
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("signin")).to_be_visible()
    assert page.evaluate(CONTRAST) == {"low": [], "unnamed": []}
