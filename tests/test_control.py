"""A headless session steered over its control socket, as a board's companion app would."""

import json
import os
import socket
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
from test_assistant import still_video
from test_cli import ROOT

from conftest import speak
from glasses.device.audio import SAMPLE_RATE, write_wav

pytestmark = pytest.mark.slow


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.settimeout(0.2)
        self.buf = b""
        self.events: list[dict] = []

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def command(self, cmd: str, **fields) -> None:
        self.send(json.dumps({"cmd": cmd, **fields}))

    def wait_for(self, match, timeout_s: float = 30.0) -> dict:
        """The first event (received from now on, or earlier and not yet matched) for
        which `match(event)` holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            for e in self.events:
                if match(e):
                    self.events.remove(e)
                    return e
            assert time.monotonic() < deadline, f"no such event in {timeout_s} s"
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            assert chunk, "the session closed the socket"
            self.buf += chunk
            *lines, self.buf = self.buf.split(b"\n")
            self.events += [json.loads(x) for x in lines if x]

    def close(self) -> None:
        self.sock.close()


def test_a_headless_session_is_steered_over_its_control_socket(store, tmp_path):
    q = speak("What am I looking at?", tmp_path / "q.wav")
    gap = np.zeros(int(2.5 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([gap, q, gap, q, np.zeros(15 * SAMPLE_RATE, np.float32)])
    write_wav(tmp_path / "talk.wav", audio, SAMPLE_RATE)
    first_mid = (len(gap) + len(q) * 0.5) / SAMPLE_RATE
    first_end = (len(gap) + len(q)) / SAMPLE_RATE
    view = still_video(tmp_path / "coffee.mp4", 25)
    path = tmp_path / "control.sock"
    env = {**os.environ, "GLASSES_HOME": str(store.home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "glasses.cli.main", "simulate", "--headless", "--view",
         str(view), "--audio", str(tmp_path / "talk.wav"), "--control", str(path),
         "--events", str(tmp_path / "events.jsonl"), "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not path.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        c = Client(path)
        c.command("camera_on")  # its event tells the session's clock
        now = c.wait_for(lambda e: e["type"] == "camera")["t"]
        assert now < first_mid - 0.3, "the session started too late for this test"

        c.send("this is not json")
        assert "not a JSON line" in c.wait_for(lambda e: e["type"] == "error")["message"]
        c.command("fly")
        assert "unknown command" in c.wait_for(lambda e: e["type"] == "error")["message"]
        c.command("ask")
        assert "text" in c.wait_for(lambda e: e["type"] == "error")["message"]
        other = Client(path)  # a second client comes and goes
        other.close()

        time.sleep(max(0.0, first_mid - now))
        c.command("mute")  # in the middle of the first question
        assert c.wait_for(lambda e: e["type"] == "mute")["muted"] is True
        time.sleep(first_end + 0.8 - first_mid)
        c.command("unmute")
        heard = c.wait_for(lambda e: e["type"] == "final_transcript")
        assert heard["speech_end"] > first_end, "the muted question was heard"
        assert "espresso" in c.wait_for(lambda e: e["type"] == "answer")["text"]

        c.command("camera_off")
        c.wait_for(lambda e: e["type"] == "camera" and e["on"] is False)
        time.sleep(1.2)
        c.command("ask", text="What is this?")
        off = c.wait_for(lambda e: e["type"] == "answer")
        assert off["text"] == "I can't tell: the camera is off."
        c.command("camera_on")
        time.sleep(1.2)
        c.command("ask", text="What am I looking at?")
        assert "espresso" in c.wait_for(lambda e: e["type"] == "answer")["text"]
        c.command("stop")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert not path.exists(), "the socket is removed when the session ends"
    summary = json.loads(out)
    assert len(summary["utterances"]) == 1, summary["utterances"]
    assert [t["text"] for t in summary["asked"]] == ["What is this?", "What am I looking at?"]
