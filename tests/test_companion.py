"""The companion page, in a real browser: headless Chromium loads it, lists the moments,
follows the session's events, and deletes a moment with the page's own button; the server
refuses whatever comes without its token or for another host."""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_cli import ROOT

from glasses.device.boards import BoardProfile
from glasses.device.clock import now_ns
from glasses.pipelines import events as ev
from glasses.pipelines.companion import STREAM_QUEUE, TOKEN_HEADER, Companion, CompanionOptions
from glasses.pipelines.frames import Card
from glasses.pipelines.memory import Memory, Moment, Thing

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def moments(memory_file):
    """The test's memory file with three moments and one thing; their ids."""
    now = time.time()
    with Memory(memory_file) as memory:
        ids = [memory.add(Moment(now - 300, "seen", "a tabby cat on the sofa", what="a tabby cat")),
               memory.add(Moment(now - 200, "read", "a sign: GATE 12", text="GATE 12")),
               memory.add(Moment(now - 100, "turn", "asked what this is", question="What is "
                                 "this?", answer="An espresso."))]
        memory.add_thing(Thing("my cup", "cup", [0.0] * 8, now - 50))
    return ids


@pytest.fixture
def companion(moments, memory_file):
    with Companion(CompanionOptions(memory_path=memory_file)) as c:
        yield c


def request(c: Companion, path: str, method: str = "GET", token: bool = True,
            headers: dict | None = None) -> tuple[int, bytes]:
    h = {TOKEN_HEADER: c.token} if token else {}
    req = urllib.request.Request(f"http://127.0.0.1:{c.port}{path}", method=method,
                                 headers={**h, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_only_this_machine_with_the_token_gets_in(companion):
    assert companion._server.server_address[0] == "127.0.0.1"
    assert companion.url == f"http://127.0.0.1:{companion.port}/?token={companion.token}"
    for path, method in (("/", "GET"), ("/events", "GET"), ("/api/memory", "GET"),
                         ("/api/memory/1", "DELETE"), ("/api/memory/1/forget", "POST"),
                         ("/api/things/my%20cup", "DELETE"), ("/nowhere", "GET")):
        assert request(companion, path, method, token=False) == (403, b"forbidden\n"), path
        wrong = f"{path}?token={companion.token[:-1]}x"
        assert request(companion, wrong, method, token=False)[0] == 403, path
    # a page elsewhere that rebinds its name to 127.0.0.1 still names itself in Host
    assert request(companion, "/api/memory", headers={"Host": "evil.example:80"})[0] == 403
    assert request(companion, "/api/memory/1", "DELETE",
                   headers={"Origin": "http://evil.example"})[0] == 403
    with Memory(companion.memory.path) as memory:
        assert memory.count() == 3, "nothing was deleted by a refused request"
    status, page = request(companion, f"/?token={companion.token}", token=False)
    assert status == 200 and b"Glasses companion" in page and b"{{nonce}}" not in page
    assert re.findall(rb'(?:src|href|action)="([^"]*)"', page) == [b"data:,"], "nothing fetched"
    assert not re.search(rb"https?:|@import|url\(", page)
    assert request(companion, "/api/memory", headers={"Host": f"localhost:{companion.port}"}
                   )[0] == 200


def test_memory_is_listed_searched_and_forgotten(companion, moments, memory_file):
    status, body = request(companion, "/api/memory")
    data = json.loads(body)
    assert status == 200 and data["total"] == 3 and data["memory"] is True
    assert [m["id"] for m in data["moments"]] == moments[::-1]  # newest first
    assert data["things"] == [{"name": "my cup", "kind": "cup", "exemplars": 1,
                               "t": pytest.approx(time.time() - 50, abs=5)}]
    found = json.loads(request(companion, "/api/memory?q=gate%2012")[1])
    assert [m["id"] for m in found["moments"]] == [moments[1]] and found["search"] == "words"
    assert json.loads(request(companion, "/api/memory?q=100%25")[1])["moments"] == []
    assert request(companion, "/api/memory?limit=0")[0] == 400
    assert request(companion, "/api/memory?limit=many")[0] == 400
    assert request(companion, f"/api/memory/{moments[0]}", "DELETE") == (200, b'{"forgotten": 1}')
    assert request(companion, f"/api/memory/{moments[0]}", "DELETE")[0] == 404
    assert request(companion, f"/api/memory/{moments[2]}/forget", "POST")[0] == 200
    assert request(companion, "/api/memory/abc", "DELETE")[0] == 400
    assert request(companion, "/api/things/my%20cup", "DELETE")[0] == 200
    with Memory(memory_file) as memory:
        assert [m.id for m in memory.moments()] == [moments[1]] and memory.things() == []


def test_events_stream_to_each_page_and_a_slow_page_is_dropped(companion):
    start = now_ns()
    companion.on_event(ev.SessionStarted(start, "view", "audio", "offline", "laptop"))
    url = f"http://127.0.0.1:{companion.port}/events?token={companion.token}"
    with urllib.request.urlopen(url, timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        companion.on_event(ev.FinalTranscript(start + 10**9, "What is this?", start))
        data = []
        while len(data) < 2:
            line = stream.readline()
            if line.startswith(b"data: "):
                data.append(json.loads(line[6:]))
    assert [d["type"] for d in data] == ["session_start", "final_transcript"]
    assert data[1]["text"] == "What is this?" and data[1]["t"] == 1.0

    slow = companion._follow()  # a page that never reads
    t0 = time.perf_counter()
    for i in range(STREAM_QUEUE + 10):
        companion.on_event(ev.Notice(now_ns(), f"notice {i}"))
    assert time.perf_counter() - t0 < 1.0, "publishing never waits for a page"
    assert slow.dropped and slow not in companion._streams


def test_the_command_serves_the_memory_page_until_stopped(moments, memory_file):
    proc = subprocess.Popen([sys.executable, "-m", "glasses.cli.main", "companion", "--json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "GLASSES_MEMORY": str(memory_file)})
    try:
        url = json.loads(proc.stdout.readline())["url"]
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        with urllib.request.urlopen(url.replace("/?", "/api/memory?"), timeout=10) as r:
            assert json.loads(r.read())["total"] == 3
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url.split("?")[0], timeout=10)
        assert refused.value.code == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 143 and url in err
    assert "GATE" not in err and "espresso" not in err.lower(), "nothing of memory is logged"


# -- in a real browser: Chromium driven over the DevTools protocol on a pipe -------------


class Browser:
    """Headless Chromium with `--remote-debugging-pipe`: commands in on its fd 3, answers
    out on fd 4, JSON messages ended by NUL."""

    def __init__(self, profile: Path):
        to_chrome, self._to = os.pipe()
        self._from, from_chrome = os.pipe()

        def fds() -> None:  # in the child: the pipe ends at 3 and 4, whatever they were
            a, b = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             "--disable-component-update", "about:blank"],
            preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer, self._next = b"", 0
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]

    def send(self, method: str, session: str | None = None, timeout_s: float = 20, **params):
        self._next += 1
        message = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._next:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer["result"]
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from], [], [], left)[0]:
                raise TimeoutError(f"chromium did not answer {method}")
            chunk = os.read(self._from, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium exited")
            self._buffer += chunk

    def go(self, url: str) -> None:
        self.send("Page.navigate", self.session, url=url)

    def js(self, expression: str):
        """The value of `expression` in the page (promises awaited)."""
        out = self.send("Runtime.evaluate", self.session, expression=expression,
                        returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise RuntimeError(out["exceptionDetails"].get("text", "exception"))
        return out["result"].get("value")

    def until(self, expression: str, timeout_s: float = 10):
        """Poll `expression` until it is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.js(expression)
            except RuntimeError:  # the page between documents
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"never true in the page: {expression}")
            time.sleep(0.05)

    def close(self) -> None:
        with_pipe = [self._to, self._from]
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in with_pipe:
            os.close(fd)


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None:
        pytest.skip("needs Chromium (Debian package chromium: make system installs it)")
    b = Browser(tmp_path / "chromium-profile")
    yield b
    b.close()


def test_the_page_in_a_browser_lists_follows_and_deletes(companion, moments, memory_file,
                                                         browser):
    browser.go(companion.url)
    browser.until("document.body && document.body.dataset.loaded === '1'")
    listed = browser.js("[...document.querySelectorAll('#moments li')].map(li => "
                        "[Number(li.dataset.id), li.textContent])")
    assert [i for i, _ in listed] == moments[::-1]
    texts = " ".join(t for _, t in listed)
    assert "a tabby cat" in texts and "GATE 12" in texts and "An espresso." in texts
    assert "my cup" in browser.js("document.getElementById('things').textContent")
    assert browser.js("document.getElementById('total').textContent") == "3 moments"
    # the inline style ran under the page's Content-Security-Policy (its nonce)
    assert browser.js("getComputedStyle(document.querySelector('.hud')).backgroundColor"
                      ) == "rgb(17, 17, 17)"

    # the page's own delete button, clicked in the browser
    cat = moments[0]
    browser.js(f"document.querySelector('button.forget[data-id=\"{cat}\"]').click()")
    browser.until(f"!document.querySelector('#moments li[data-id=\"{cat}\"]')")
    with Memory(memory_file) as memory:
        assert memory.get(cat) is None and memory.count() == 2
    assert browser.js("document.getElementById('total').textContent") == "2 moments"

    # the display, mirrored live from the session's events
    browser.until("document.getElementById('conn').textContent === 'live'")
    start = now_ns()
    companion.on_event(ev.SessionStarted(start, "view", "audio", "realtime", "laptop"))
    companion.on_event(ev.FinalTranscript(start + 1, "What is this?", start))
    for piece in ("An ", "espresso."):
        companion.on_event(ev.AnswerPiece(start + 2, piece, start))
    browser.until("document.getElementById('answer').textContent === 'An espresso.'")
    companion.on_event(ev.Answer(start + 3, "An espresso.", start, "look",
                                 Card("Espresso", "a small strong coffee")))
    browser.until("document.getElementById('card-title').textContent === 'Espresso'")
    assert browser.js("document.getElementById('question').textContent") == "What is this?"

    # search, typed into the page
    browser.js("document.getElementById('q').value = 'gate';"
               "document.querySelector('#search button').click()")
    browser.until("document.querySelectorAll('#moments li').length === 1")
    assert "GATE 12" in browser.js("document.getElementById('moments').textContent")


# -- with the real models --------------------------------------------------------------


@pytest.mark.models
def test_search_by_meaning_finds_what_no_word_matches(store, memory_file):
    from glasses.models.text_embedding import TextEmbedder

    embedder = TextEmbedder(store, BoardProfile.laptop())
    texts = ["a tabby cat asleep on the sofa", "a departures board: gate 12, boarding"]
    now = time.time()
    with Memory(memory_file) as memory:
        ids = [memory.add(Moment(now - i, "seen", t, what=t, text_vec=v))
               for i, (t, v) in enumerate(zip(texts, embedder.embed(texts), strict=True))]
    with Companion(CompanionOptions(memory_path=memory_file), store) as c:
        data = json.loads(request(c, "/api/memory?q=my%20kitten")[1])
    assert data["search"] == "meaning" and data["note"] == ""
    assert data["moments"][0]["id"] == ids[0] and data["moments"][0]["score"] > 0.3


@pytest.mark.models
@pytest.mark.slow
def test_simulate_serves_the_session_live(store, memory_file):
    """`glasses simulate --companion`: the page's stream carries the session as it runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "glasses.cli.main", "simulate", "--headless", "--mode",
         "simulated", "--companion", "--json"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GLASSES_HOME": str(store.home), "GLASSES_MEMORY": str(memory_file)})
    try:
        for line in proc.stderr:
            if line.startswith("companion page: "):
                url = line.split()[2]
                break
        else:
            raise AssertionError("no companion page address printed")
        seen = []
        with urllib.request.urlopen(url.replace("/?", "/events?"), timeout=120) as stream:
            for raw in stream:  # until the session ends and the page is closed
                if raw.startswith(b"data: "):
                    seen.append(json.loads(raw[6:]))
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    kinds = [e["type"] for e in seen]
    for kind in ("session_start", "final_transcript", "answer_token", "answer", "session_end"):
        assert kind in kinds, kind
    heard = [e["text"] for e in seen if e["type"] == "final_transcript"]
    assert heard == [u["text"] for u in json.loads(out)["utterances"]]
    with pytest.raises(urllib.error.URLError):  # closed with the session
        urllib.request.urlopen(url, timeout=5)
