"""Nothing leaves the device: no command that answers, transcribes, simulates or runs a
bundle opens a network socket or looks up a name, on any of its threads (onnxruntime's
telemetry ran on a background thread of its own). Traced with strace at the system-call
level, so C++ threads are seen as well as Python's."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from test_cli import ROOT

from conftest import speak
from glasses.device.boards import BoardProfile
from glasses.export.bundle import build_bundle
from glasses.simulator.session import DEMO_VIDEO

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")]

# a socket call that reaches anything but a local Unix socket, or asks the name service
NETWORK = re.compile(r"(connect|sendto|sendmsg|sendmmsg)\(.*(AF_INET|AF_INET6|AF_NETLINK"
                     r"|nscd)")


def network_calls(tmp_path: Path, home: Path, *args: str) -> list[str]:
    """Run `glasses ARGS` under strace; the network system calls it made."""
    trace = tmp_path / "trace.log"
    env = {**os.environ, "GLASSES_HOME": str(home), "HOME": str(tmp_path)}
    env.pop("ORT_DISABLE_TELEMETRY", None)  # the project must turn it off itself
    result = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,sendmmsg", "-o",
         str(trace), sys.executable, "-m", "glasses.cli.main", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    calls = trace.read_text().splitlines()
    assert not (tmp_path / ".cache" / "Microsoft").exists(), "a telemetry device id was written"
    return [c for c in calls if NETWORK.search(c)]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("offline-media")
    speak("What am I looking at?", folder / "q.wav")
    cap = cv2.VideoCapture(str(DEMO_VIDEO))
    ok, frame = cap.read()
    cap.release()
    assert ok
    cv2.imwrite(str(folder / "view.jpg"), frame)
    (folder / "cases.tsv").write_text("view.jpg\tWhat is this?\tespresso|coffee|cup\n")
    return folder


COMMANDS = {
    "transcribe": lambda m, b: ["transcribe", str(m / "q.wav")],
    "ask-identify": lambda m, b: ["ask", "--image", str(m / "view.jpg"), "--question",
                                  "What is this?"],
    "ask-general": lambda m, b: ["ask", "--image", str(m / "view.jpg"), "--question",
                                 "Is it hot?"],
    "ask-video-audio": lambda m, b: ["ask", "--video", str(DEMO_VIDEO), "--audio",
                                     str(m / "q.wav")],
    "eval-look": lambda m, b: ["eval", "look", str(m)],
    "simulate": lambda m, b: ["simulate", "--headless", "--mode", "simulated"],
    "run-bundle": lambda m, b: ["run", "--bundle", str(b), "--scenario", "demo", "--mode",
                                "simulated"],
}


@pytest.fixture(scope="module")
def bundle(store, tmp_path_factory):
    path = tmp_path_factory.mktemp("net-bundle") / "laptop"
    build_bundle(store, BoardProfile.laptop(), path, lambda msg: None)
    yield path
    shutil.rmtree(path)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_command_that_answers_opens_a_network_socket(command, store, media, bundle,
                                                        tmp_path):
    args = COMMANDS[command](media, bundle)
    assert network_calls(tmp_path, store.home, *args) == []


def test_the_trace_sees_a_socket_opened_on_another_thread(tmp_path):
    """The check itself (on the loopback: no packet leaves this machine)."""
    trace = tmp_path / "trace.log"
    code = ("import socket, threading\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "t = threading.Thread(target=s.connect, args=(('127.0.0.1', 9),))\n"
            "t.start(); t.join()\n")
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,sendmmsg",
                    "-o", str(trace), sys.executable, "-c", code], timeout=60)
    assert any(NETWORK.search(c) for c in trace.read_text().splitlines())
