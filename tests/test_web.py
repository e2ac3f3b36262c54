"""The review app: a real server on localhost driven in real headless Chromium (Debian's `chromium`, through
Playwright, no browser download), and its safety at the HTTP level."""

from __future__ import annotations

import copy
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from analyzer.store import Store
from analyzer.web import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                    reason="Debian chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def review_store(tmp_path_factory, sample_results) -> Path:
    """The samples' results in a store, as `analyzer analyze` leaves them."""
    path = tmp_path_factory.mktemp("review") / "analyzer.sqlite"
    with Store(path) as store:
        for result in sample_results.values():
            store.save(result, "tests", None)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`analyzer serve` in its own process, as a reviewer would start it."""

    def __init__(self, store: Path, *options: str):
        self.store, self.options, self.port = store, options, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        self.process = subprocess.Popen([sys.executable, "-m", "analyzer.cli", "serve", str(self.store),
                                         "--port", str(self.port), *self.options],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()[1].decode()
            try:
                if httpx.get(self.url + "/", timeout=2).status_code < 500:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise TimeoutError("the review app did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def audio_position(page) -> float:
    return page.evaluate("document.getElementById('player').currentTime")


@needs_chromium
def test_a_reviewer_works_through_the_queue_in_chromium(review_store, sample_results, browser):
    server = Server(review_store).start()
    try:
        page = browser.new_page()
        page.goto(server.url + "/")
        rows = page.locator("#queue tr.call")
        assert rows.count() == len(sample_results)
        top = rows.first.locator("td").nth(2).inner_text()
        assert top == "call_03_distress"  # urgent: the borrower's self-harm turn
        assert "to review" in rows.first.inner_text()

        rows.first.click()
        page.wait_for_url(f"**/calls/{top}")
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        result = sample_results[top]
        flag_index = next(i for i, f in enumerate(result.flags) if f.category == "self_harm")
        flag = result.flags[flag_index]
        page.locator(f"#marker-{flag_index}").click()
        page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {flag.start}) < 0.05")
        assert abs(audio_position(page) - flag.start) < 0.05

        turn = result.turns[1]
        page.locator("#turn-2 td.time").click()  # a transcript line seeks too
        page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {turn.start}) < 0.05")

        page.fill("#reviewer", "审核员 Li")
        row = page.locator(f"#flag-{flag_index}")
        row.locator("input[name=note]").fill("确认：借款人说不想活了，已转人工关怀")
        row.locator("button[value=confirmed]").click()
        decision = row.locator(".decision")
        decision.filter(has_text="confirmed by 审核员 Li").wait_for()
    finally:
        server.stop()

    server.start()  # the decision outlives the server (same address: the browser keeps its reviewer name)
    try:
        page.goto(f"{server.url}/calls/{top}")
        decision = page.locator(f"#flag-{flag_index} .decision")
        assert "confirmed by 审核员 Li" in decision.inner_text()
        assert "已转人工关怀" in decision.inner_text()
        assert page.locator("#reviewer").input_value() == "审核员 Li"  # remembered by the browser
        page.goto(server.url + "/?status=in+progress")
        assert page.locator("#queue tr.call").count() == 1
        assert f"1/{len(result.flags)}" in page.locator("#queue tr.call").first.inner_text()
    finally:
        server.stop()


@pytest.fixture
def own_store(review_store, tmp_path) -> Path:
    """A copy of the samples' store for a test that writes to it."""
    path = tmp_path / "analyzer.sqlite"
    shutil.copy(review_store, path)
    return path


@pytest.fixture
def client(own_store):
    return TestClient(create_app(own_store))


def test_queue_filters_and_counts(client, sample_results):
    page = client.get("/", params={"category": "self_harm"})
    assert page.status_code == 200
    assert "call_03_distress" in page.text and "call_02_abusive" not in page.text
    everything = client.get("/").text
    assert f"{len(sample_results)} calls" in everything
    assert everything.index("call_03_distress") < everything.index("call_02_abusive") < \
        everything.index("call_04_angry_borrower")
    assert "call_04_angry_borrower" in client.get("/", params={"status": "no flags"}).text
    assert client.get("/", params={"status": "nonsense"}).status_code == 400


def test_only_calls_in_the_store_are_served(client):
    assert client.get("/calls/call_01_compliant/audio").headers["content-type"] == "audio/wav"
    ranged = client.get("/calls/call_01_compliant/audio", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100  # what lets the browser seek
    for attempt in ("/calls/..%2F..%2Fetc%2Fpasswd/audio", "/calls/%2Fetc%2Fpasswd/audio", "/calls/nope/audio",
                    "/calls/nope", "/static/..%2Fstore.py", "/static/../../pyproject.toml"):
        response = client.get(attempt)
        assert response.status_code == 404, attempt
        assert "root:" not in response.text


def test_what_was_said_is_escaped(own_store, sample_results):
    hostile = copy.deepcopy(sample_results["call_02_abusive"])
    hostile.call_id = "hostile"
    hostile.source.sha256 = "0" * 64
    hostile.turns[0].text = "<script>alert('x')</script>你好"
    hostile.flags[0].evidence = "<img src=x onerror=alert(1)>"
    with Store(own_store) as store:
        store.save(hostile, "tests", None)
    page = TestClient(create_app(own_store)).get("/calls/hostile").text
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;你好" in page
    assert "<img src=x" not in page


def test_a_call_id_with_slashes_opens(own_store, sample_results):
    """Manifest call ids are often paths (2026-11/agent7/call 1): the page, its audio and its decisions work."""
    foldered = copy.deepcopy(sample_results["call_02_abusive"])
    foldered.call_id = "2026-11/agent7/call 1"
    foldered.source.sha256 = "1" * 64
    with Store(own_store) as store:
        store.save(foldered, "tests", None)
    client = TestClient(create_app(own_store))
    queue = client.get("/").text
    assert 'href="/calls/2026-11/agent7/call%201"' in queue
    page = client.get("/calls/2026-11/agent7/call%201")
    assert page.status_code == 200 and 'src="/calls/2026-11/agent7/call%201/audio"' in page.text
    assert client.get("/calls/2026-11/agent7/call%201/audio").headers["content-type"] == "audio/wav"
    saved = client.post("/calls/2026-11/agent7/call%201/flags/0/review", json={"decision": "confirmed", "reviewer": "a"})
    assert saved.status_code == 200
    assert client.get("/calls/2026-11/agent7").status_code == 404


def test_decisions_are_checked(client):
    url = "/calls/call_02_abusive/flags/0/review"
    assert client.post(url, json={"decision": "maybe", "reviewer": "a"}).status_code == 422
    assert client.post(url, json={"decision": "confirmed", "reviewer": ""}).status_code == 422
    assert client.post("/calls/call_02_abusive/flags/99/review",
                       json={"decision": "confirmed", "reviewer": "a"}).status_code == 404
    saved = client.post(url, json={"decision": "dismissed", "reviewer": "张三", "note": "误报"})
    assert saved.status_code == 200 and saved.json()["decision"] == "dismissed"
    assert "dismissed by 张三" in client.get("/calls/call_02_abusive").text


def test_read_only_mode_takes_no_decisions(review_store):
    client = TestClient(create_app(review_store, readonly=True))
    page = client.get("/calls/call_02_abusive").text
    assert "form class=\"review\"" not in page and "read-only" in page
    assert client.post("/calls/call_02_abusive/flags/0/review",
                       json={"decision": "confirmed", "reviewer": "a"}).status_code == 403


def test_a_token_guards_every_page(review_store):
    client = TestClient(create_app(review_store, token="t0ken"), follow_redirects=False)
    for path in ("/", "/calls/call_02_abusive", "/calls/call_02_abusive/audio", "/static/review.js"):
        assert client.get(path).status_code == 401, path
    assert client.get("/", params={"token": "wrong"}).status_code == 401
    first = client.get("/calls/call_02_abusive", params={"token": "t0ken"})
    assert first.status_code == 303 and "token" not in first.headers["location"]
    assert client.get("/calls/call_02_abusive").status_code == 200  # the cookie carries it from now on
    bearer = TestClient(create_app(review_store, token="t0ken"))
    assert bearer.get("/", headers={"Authorization": "Bearer t0ken"}).status_code == 200
