"""The web UI in a real browser: headless Debian Chromium (Playwright) against a real ``omnimem serve``.

One keyed server over three memories (``demo``: two LoCoMo sessions, jfk.flac and a generated video
whose scenes show words that OCR reads; ``scratch``; ``secret``) and one open loopback server. Each
test saves screenshots of its pages under its ``tmp_path`` when it fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("jinja2")

from uikit import CHROMIUM, SCRIPT_TEXT, build_memories, launch, serving, sign_in  # noqa: E402


def in_browser(test):
    """A test that drives Chromium over the memories built from the shared data."""
    return pytest.mark.slow(pytest.mark.data(test))


ANSWER = ["Caroline ", "went to an ", "LGBTQ support group ", "[E1]."]


class StreamingScript:
    """A generator double: streams a fixed answer citing E1."""

    name = "scripted"

    def generate(self, messages, **_):
        from omnimem.vlm.base import Generation

        return Generation("".join(ANSWER), 10, 4, 0.01)

    def stream(self, messages, **_):
        yield from ANSWER


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_dir):
    """The keyed server: ``url``, ``root``, its keys (``admin``: every memory; ``demo_only``: read
    ``demo``) and facts of the memories (``forged``: an item naming a file it was not read from)."""
    from omnimem.server.keys import KeyStore

    root = tmp_path_factory.mktemp("ui") / "memories"
    facts = build_memories(root, data_dir)
    keys = KeyStore(root)
    admin = keys.create("admin-ui", memories=["*"], rights="read-write")
    demo_only = keys.create("demo-only", memories=["demo"], rights="read")
    with serving(root, generator=StreamingScript()) as url:
        yield {"url": url, "root": root, "admin": admin, "demo_only": demo_only, **facts}


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install 'omnimem[dev]' (Playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/system-deps.sh installs it)")
    with sync_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


def _profile(browser, request, tmp_path, **options):
    """A fresh browser profile; on failure, a screenshot of each open page goes to ``tmp_path``."""
    ctx = browser.new_context(viewport={"width": 1000, "height": 800}, **options)
    dialogs: list[str] = []
    ctx.on("page", lambda p: p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss())))
    ctx.dialogs = dialogs  # type: ignore[attr-defined]
    failed_before = request.session.testsfailed
    yield ctx
    if request.session.testsfailed > failed_before:  # the call phase failed (teardown runs after its report)
        for n, page in enumerate(ctx.pages):
            shot = tmp_path / f"failure-{request.node.name}-{n}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failed page: {shot}")
    ctx.close()


@pytest.fixture
def context(browser, request, tmp_path):
    yield from _profile(browser, request, tmp_path)


@pytest.fixture
def no_csp_context(browser, request, tmp_path):
    """A profile that ignores the UI's Content-Security-Policy: escaping alone must keep scripts out."""
    yield from _profile(browser, request, tmp_path, bypass_csp=True)


@pytest.fixture
def page(context, site):
    """A page signed in with the read-write key for every memory."""
    page = context.new_page()
    sign_in(page, site["url"], site["admin"])
    return page


def wait_until(page, script, arg=None, *, timeout=20.0):
    """Poll ``script`` (a JS function of ``arg``) until it returns true. Not ``page.wait_for_function``:
    that evaluates a string, which the UI's Content-Security-Policy forbids, as it should."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(script, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {script}")
        page.wait_for_timeout(100)


def _search(page, site, query, *, memory="demo"):
    page.goto(f"{site['url']}/m/{memory}/search")
    page.get_by_label("Question or keywords").fill(query)  # no Enter: results come as you type
    page.locator("#results .count, #results .ctx-summary").first.wait_for()
    page.locator("#results[aria-busy]").wait_for(state="detached")


@in_browser
def test_search_as_you_type_finds_the_expected_turn(page, site):
    _search(page, site, "LGBTQ support group")
    first = page.locator(".hit").first
    assert "I went to a LGBTQ support group yesterday" in first.locator(".text").inner_text()
    meta = first.locator(".meta").inner_text()
    assert "Caroline" in meta and "bm25" in meta and "score" in meta and "text" in meta
    assert "q=LGBTQ" in page.url  # the address can be shared


@in_browser
def test_context_view_shows_tokens_against_the_budget(page, site):
    page.goto(f"{site['url']}/m/demo/search")
    page.get_by_label("Token budget").fill("256")
    page.get_by_label("Context a model gets").check()
    page.get_by_label("Question or keywords").fill("What did Caroline do at the support group?")
    page.wait_for_selector("#ctx-tokens")
    used, budget = map(int, re.fullmatch(r"(\d+) / (\d+) tokens", page.inner_text("#ctx-tokens")).groups())
    entries = page.locator(".entry")
    tokens = [int(t.split()[0]) for t in entries.locator(".tokens").all_inner_texts()]
    assert budget == 256 and 0 < used <= budget and used == sum(tokens)
    assert entries.count() >= 1 and page.locator(".entry .rests a").count() >= 1  # items each entry rests on
    kinds = set(entries.locator(".badge.kind").all_inner_texts())
    assert "item" in kinds and kinds & {"fact", "summary"}


@in_browser
def test_clicking_a_video_hit_plays_from_the_segment_start(page, site):
    _search(page, site, "lighthouse")
    play = page.locator(".hit.modality-video .play").first
    start = float(play.get_attribute("data-start"))
    assert start > 0  # the LIGHTHOUSE scene is the video's second segment
    play.click()
    wait_until(
        page,
        "s => { const v = document.getElementById('player-video'); return !!v && !v.hidden && v.readyState >= 1"
        " && Math.abs(v.currentTime - s) < 0.5 }",
        start,
    )
    assert page.locator(".hit.modality-video .strip img").count() >= 1  # its keyframes


@in_browser
def test_timeline_audio_segment_plays_from_its_start(page, site):
    page.goto(f"{site['url']}/m/demo/timeline")
    episode = page.locator("section.episode", has_text="jfk.flac")
    episode.locator("summary").click()
    segment = episode.locator(".segment .play").nth(1)
    segment.wait_for()
    start = float(segment.get_attribute("data-start"))
    player = segment.get_attribute("data-player")
    segment.click()
    wait_until(
        page,
        "([id, s]) => { const a = document.getElementById(id); return a.readyState >= 1 && Math.abs(a.currentTime - s) < 0.5 }",
        [player, start],
    )
    assert start > 5 and "country" in episode.inner_text().lower()


@in_browser
def test_timeline_filters_by_speaker_and_expands_a_session(page, site):
    page.goto(f"{site['url']}/m/demo/timeline")
    page.get_by_label("Speaker").select_option("Melanie")
    page.get_by_role("button", name="Apply").click()
    page.locator("details summary", has_text="Turns of session_1").click()
    page.wait_for_selector(".turn")
    speakers = set(page.locator(".turn .speaker").all_inner_texts())
    assert speakers == {"Melanie"}
    assert page.locator("section.episode", has_text="jfk.flac").count() == 0  # no words of Melanie's
    page.goto(f"{site['url']}/m/demo/timeline")
    page.get_by_label("From").fill("2023-05-20")
    page.get_by_role("button", name="Apply").click()
    sessions = page.locator(".session h3").all_inner_texts()
    assert sessions == ["session_2"]  # 25 May 2023; session_1 was on 8 May


@in_browser
def test_graph_node_expands_and_an_edge_shows_its_evidence(page, site):
    page.goto(f"{site['url']}/m/demo/graph?entity=Caroline")
    page.wait_for_selector("#graph svg .node")
    before = page.locator("#graph .node").count()
    statuses = page.locator(".facts tbody .badge.status").all_inner_texts()
    assert before > 1 and "current" in statuses and "corrected" in statuses
    corrected = page.locator(".facts tbody tr.status-corrected").first
    corrected.locator("summary").click()
    assert "correct" in corrected.locator(".history").inner_text()
    grown = False
    for _ in range(min(before, 12)):
        node = page.locator('#graph .node[data-expanded="false"]').first
        if node.count() == 0:
            break
        node_id = node.get_attribute("data-id")
        node.focus()
        page.keyboard.press("Enter")  # the keyboard works as the mouse does
        page.locator(f'#graph .node[data-id="{node_id}"][data-expanded="true"]').wait_for()
        if page.locator("#graph .node").count() > before:
            grown = True
            break
    assert grown, "no neighbour of Caroline had neighbours of its own"
    page.locator("#graph .edge").first.click()
    page.wait_for_selector("#edge-sources .turn")
    assert page.locator("#edge-sources .turn a", has_text="Open").count() >= 1


@in_browser
def test_ask_streams_the_answer_with_citations_linking_to_evidence(page, site):
    page.goto(f"{site['url']}/m/demo/search")
    page.get_by_label("Question for the model").fill("Where did Caroline go yesterday?")
    page.get_by_role("button", name="Ask").click()
    page.wait_for_selector("#ask-answer a.cite")
    assert page.inner_text("#ask-answer") == "".join(ANSWER)
    link = page.locator("#ask-answer a.cite")
    assert link.get_attribute("href") == "#ev-E1" and page.locator("#ev-E1 .text").count() == 1


@in_browser
def test_forget_a_speaker_after_a_confirmation_that_counts(page, site):
    _search(page, site, "bees honey", memory="scratch")
    assert any("Eve" in m for m in page.locator(".hit .meta").all_inner_texts())
    page.goto(f"{site['url']}/m/scratch/change")
    page.get_by_label("Forget by").select_option("speaker")
    page.get_by_label("Speaker, session, episode or item id").fill("Eve")
    page.get_by_role("button", name="Count what would go").click()
    assert "This removes 2 items" in page.inner_text("#forget-count")
    page.get_by_role("button", name="Forget 2 items").click()
    assert "Removed 2 items" in page.inner_text("#forget-done")
    _search(page, site, "bees honey", memory="scratch")
    assert not any("Eve" in m for m in page.locator(".hit .meta").all_inner_texts())
    assert not any("bees" in t for t in page.locator(".hit .text").all_inner_texts())


@in_browser
def test_markup_in_a_memory_shows_as_text_and_never_runs(no_csp_context, site):
    context = no_csp_context
    page = context.new_page()
    sign_in(page, site["url"], site["admin"])
    page.goto(f"{site['url']}/m/scratch/change")
    page.get_by_label("Note", exact=True).fill(SCRIPT_TEXT)
    page.get_by_role("button", name="Remember").click()
    page.wait_for_url(re.compile(r".*/item\?id=.*added=1"))
    assert page.inner_text(".text.big") == SCRIPT_TEXT
    _search(page, site, "Mallory note", memory="scratch")  # a fragment fetched by script
    assert SCRIPT_TEXT in page.locator(".hit .text").all_inner_texts()
    page.goto(f"{site['url']}/m/scratch/search")
    page.get_by_label("Question for the model").fill("What did Mallory write?")
    page.get_by_role("button", name="Ask").click()  # evidence rendered by script from JSON
    page.wait_for_selector("#ask-evidence .text")
    assert any(SCRIPT_TEXT in t for t in page.locator("#ask-evidence .text").all_inner_texts())
    assert page.locator("main script, main img[src='x']").count() == 0
    page.wait_for_timeout(300)
    assert context.dialogs == []


@in_browser
def test_a_key_for_one_memory_sees_only_that_one(context, site):
    page = context.new_page()
    sign_in(page, site["url"], site["demo_only"])
    assert page.locator("table.memories tbody th").all_inner_texts() == ["demo"]
    row = page.locator("table.memories tbody tr").first.inner_text()
    assert all(m in row for m in ("text", "audio", "video", "image"))  # its modalities
    for url in ("/m/secret/search?q=vault", "/m/scratch/timeline", "/m/secret/graph"):
        response = page.goto(f"{site['url']}{url}")
        assert response.status == 404 and "vault" not in page.content()
    assert page.locator("nav.tabs a", has_text="Change").count() == 0  # read-only: no Change tab
    response = page.goto(f"{site['url']}/m/demo/change")
    assert "may only read" in page.inner_text("main")
    csrf = page.get_attribute('meta[name="csrf-token"]', "content")
    refused = page.request.post(f"{site['url']}/m/demo/add", form={"text": "nope", "csrf": csrf})
    assert refused.status == 403


@in_browser
def test_posts_without_the_csrf_token_are_refused(page, site):
    base = site["url"]
    csrf = page.get_attribute('meta[name="csrf-token"]', "content")
    assert page.request.post(f"{base}/m/scratch/add", form={"text": "no token"}).status == 403
    assert page.request.post(f"{base}/m/scratch/add", form={"text": "wrong", "csrf": "x" * 43}).status == 403
    foreign = page.request.post(f"{base}/m/scratch/add", form={"text": "evil", "csrf": csrf}, headers={"Origin": "https://evil.example"})  # fmt: skip
    assert foreign.status == 403
    forget = page.request.post(f"{base}/m/scratch/forget", form={"by": "speaker", "value": "Bob", "expected": "1"})
    assert forget.status == 403
    ok = page.request.post(f"{base}/m/scratch/add", form={"text": "with the token", "csrf": csrf}, max_redirects=0)
    assert ok.status == 303
    _search(page, site, "Bob bicycles", memory="scratch")
    assert any("Bob repairs bicycles" in t for t in page.locator(".hit .text").all_inner_texts())


@in_browser
def test_media_are_confined_to_files_the_memory_ingested(page, site):
    base = site["url"]
    forged = page.request.get(f"{base}/m/demo/media?id={site['forged']}")  # names a secret file as its source
    assert forged.status == 404 and site["secret"] not in forged.text()
    _search(page, site, "lighthouse")
    src = page.locator(".hit.modality-video .play").first.get_attribute("data-src")
    ranged = page.request.get(f"{base}{src}", headers={"Range": "bytes=0-99"})
    assert ranged.status == 206 and ranged.headers["content-range"].startswith("bytes 0-99/")
    assert len(ranged.body()) == 100 and ranged.headers["content-type"] == "video/mp4"
    assert page.request.get(f"{base}/m/demo/blob?address={'0' * 64}.jpg").status == 404
    assert page.request.get(f"{base}/m/demo/media?id=../../etc/passwd").status == 404


@in_browser
def test_sessions_cookie_and_sign_out(context, site):
    page = context.new_page()
    page.goto(f"{site['url']}/m/demo/search")
    assert "/signin" in page.url  # no session: the sign-in page, and back here after it
    page.get_by_label("API key").fill("omk_000000000000_wrongwrongwrongwrongwrong")
    page.get_by_role("button", name="Sign in").click()
    assert "Wrong or revoked key" in page.inner_text("#signin-error")
    page.get_by_label("API key").fill(site["admin"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/m/demo/search$"))
    (cookie,) = [c for c in context.cookies() if c["name"] == "omnimem_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and site["admin"] not in cookie["value"]
    assert site["admin"] not in page.url and "omnimem_session" not in page.evaluate("document.cookie")
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{site['url']}/m/demo/search")
    assert "/signin" in page.url


@in_browser
def test_upload_reports_what_was_added_and_what_failed(page, site, tmp_path):
    good = tmp_path / "notes.txt"
    good.write_text("Zelda waters the tomatoes every Tuesday.")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    page.goto(f"{site['url']}/m/scratch/change")
    page.get_by_label("Files", exact=True).set_input_files([str(good), str(bad)])
    page.get_by_role("button", name="Upload and ingest").click()
    wait_until(page, "() => document.getElementById('upload-status').textContent === 'Done.'", timeout=60)
    report = page.inner_text("#upload-report")
    assert "notes.txt: added 1 item" in report and "broken.mp4: failed" in report
    assert "/uploads/" not in report  # server paths stay on the server
    assert page.get_attribute("#upload-bar", "value") in ("1", "1.0")


@in_browser
def test_keyboard_reaches_the_views_with_visible_focus(page, site):
    page.goto(f"{site['url']}/m/demo/timeline")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    seen, unringed = [], []
    for _ in range(12):
        page.keyboard.press("Tab")
        name, tag, outline = page.evaluate(
            "() => { const e = document.activeElement;"
            " return [e.textContent.trim() || e.id, e.tagName, getComputedStyle(e).outlineStyle] }"
        )
        seen.append(name)
        if tag in ("A", "BUTTON", "SELECT") and outline == "none":
            unringed.append(name)
    assert {"Search", "Timeline", "Graph", "Change"} <= set(seen)
    assert unringed == [], f"focused without a visible ring: {unringed}"
    for url in ("/m/demo/search", "/m/demo/timeline", "/m/demo/graph?entity=Caroline", "/m/demo/change"):
        page.goto(f"{site['url']}{url}")
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter(e => !e.labels.length).map(e => e.name)"
        )
        assert unlabelled == [], f"{url}: inputs without a label: {unlabelled}"


@in_browser
def test_open_loopback_server_needs_no_sign_in_and_says_when_no_model(context, tmp_path):
    import omnimem
    from omnimem.encoders.hashing import HashEncoder

    root = tmp_path / "open"
    with omnimem.Memory.open(root / "notes", encoder=HashEncoder(64)) as mem:
        mem.add("Ada keeps a lighthouse log.", speaker="Ada")
    with serving(root) as url:
        page = context.new_page()
        page.goto(f"{url}/")
        assert page.locator("table.memories tbody th").all_inner_texts() == ["notes"]
        page.goto(f"{url}/m/notes/search")
        page.get_by_label("Question for the model").fill("What does Ada keep?")
        page.get_by_role("button", name="Ask").click()
        wait_until(page, "() => document.getElementById('ask-status').textContent.includes('No model')")
        assert "lighthouse log" in page.inner_text("#ask-evidence")


@in_browser
def test_narrow_window_has_no_horizontal_scroll(page, site):
    page.set_viewport_size({"width": 360, "height": 740})
    for url in ("/", "/m/demo/search?q=support", "/m/demo/timeline", "/m/demo/graph?entity=Caroline", "/m/demo/change"):
        page.goto(f"{site['url']}{url}")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{url} scrolls sideways by {overflow}px at 360px"


# -- without a browser: sessions, media confinement, citations, redirects ----------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_sessions_end_when_idle_when_old_and_with_their_key(tmp_path):
    from starlette.exceptions import HTTPException

    from omnimem.server.auth import Authenticator
    from omnimem.server.keys import KeyStore
    from omnimem.server.ui.sessions import SessionStore

    keys = KeyStore(tmp_path)
    plain = keys.create("phone", memories=["a"], rights="read")
    clock = Clock()
    store = SessionStore(Authenticator(keys), idle_s=60, max_age_s=300, clock=clock)
    with pytest.raises(HTTPException) as refused:
        store.sign_in(plain + "x")
    assert refused.value.status_code == 401
    sid, session = store.sign_in(plain)
    assert session.scope.memories == ("a",) and session.key == plain.split("_")[1] and sid not in plain
    clock.t = 59
    assert store.get(sid) is session
    clock.t = 59 + 61
    assert store.get(sid) is None  # idle for more than a minute
    sid, _ = store.sign_in(plain)
    for clock.t in (150, 200, 250, 300, 350, 400):  # used every 50 s ...
        assert store.get(sid) is not None
    clock.t = 421
    assert store.get(sid) is None  # ... but signed in more than 300 s ago
    sid, _ = store.sign_in(plain)
    keys.revoke("phone")
    assert store.get(sid) is None  # a revoked key ends its sessions at once


def test_open_sessions_end_when_the_server_starts_to_need_keys(tmp_path):
    from omnimem.server.auth import Authenticator
    from omnimem.server.keys import KeyStore
    from omnimem.server.ui.sessions import SessionStore

    keys = KeyStore(tmp_path)
    store = SessionStore(Authenticator(keys))
    sid, session = store.open_session()
    assert store.get(sid) is session and session.scope.can_write("anything")
    keys.create("first", memories=["*"])
    assert store.get(sid) is None


def test_media_files_are_only_the_bytes_a_memory_ingested(tmp_path):
    from dataclasses import replace

    from omnimem.errors import NotFound
    from omnimem.memory.media import file_digest
    from omnimem.server.ui.media import MediaFiles
    from omnimem.types import Item

    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF-not-really-audio" * 10)
    good = Item.make(modality="audio", text="hello", source=str(clip), episode=f"file:{file_digest(clip)[:24]}")
    files = MediaFiles()
    assert files.path_of(good) == clip.resolve()
    bad = [
        replace(good, modality="text"),  # nothing to play
        replace(good, episode="conversation-1"),  # not read from a file
        replace(good, source="/etc/hostname"),  # names another file
        replace(good, source=str(tmp_path / "gone.wav")),  # gone
    ]
    for item in bad:
        with pytest.raises(NotFound):
            files.path_of(item)
    clip.write_bytes(b"other bytes now")
    with pytest.raises(NotFound, match="changed since it was remembered"):
        files.path_of(good)


def test_citations_become_links_and_everything_else_stays_text():
    from omnimem.server.ui.render import cite

    out = str(cite("<b>Paris</b> [E1] [E1, E2] [a note] [E9]", ["E1", "E2"]))
    link = '<a class="cite" href="#ev-{0}">{0}</a>'
    assert out == (
        f"&lt;b&gt;Paris&lt;/b&gt; [{link.format('E1')}] [{link.format('E1')}, {link.format('E2')}] [a note] [E9]"
    )


def test_sign_in_redirects_only_within_the_site():
    from omnimem.server.ui.actions import _safe

    assert _safe("/m/demo/search?q=x") == "/m/demo/search?q=x"
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "/\nx"):
        assert _safe(target) == "/"
