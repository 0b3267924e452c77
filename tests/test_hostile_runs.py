"""Interrupted, killed and concurrent runs (#19): SIGTERM unwinds like Ctrl-C, recordings
are finalised or left as they were, two builds of the store at once, archive bombs."""

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import cv2
import pytest
from test_cli import ROOT

from glasses.device.errors import StoreError
from glasses.models.bundle import MANIFEST, open_bundle

pytestmark = pytest.mark.slow


def start(args: list[str], env: dict, cwd=ROOT) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "glasses.cli.main", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not path():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return n


def test_sigterm_finalises_a_recording_and_removes_temporary_files(store, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "GLASSES_HOME": str(store.home), "TMPDIR": str(tmp)}
    out = tmp_path / "rec.mp4"
    proc = start(["simulate", "--headless", "--record", str(out), "--events",
                  str(tmp_path / "e.jsonl")], env)
    wait_for(lambda: (tmp_path / "e.jsonl").exists()
             and "session_start" in (tmp_path / "e.jsonl").read_text(), proc)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert frames(out) > 10, "the recording is playable"
    assert out.with_suffix(".wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.jsonl", "rec.mp4", "rec.wav",
                                                          "tmp"]
    assert list(tmp.iterdir()) == [], "the scenario's temporary folder is gone"


def test_a_recording_killed_outright_leaves_the_earlier_one_intact(store, tmp_path):
    env = {**os.environ, "GLASSES_HOME": str(store.home)}
    out = tmp_path / "rec.mp4"
    first = start(["simulate", "--headless", "--mode", "offline", "--record", str(out)], env)
    assert first.wait(120) == 0
    before = out.read_bytes()
    proc = start(["simulate", "--headless", "--record", str(out), "--events",
                  str(tmp_path / "e.jsonl")], env)
    wait_for(lambda: (tmp_path / "e.jsonl").exists()
             and "session_start" in (tmp_path / "e.jsonl").read_text(), proc)
    time.sleep(1)
    proc.kill()
    proc.wait(30)
    assert out.read_bytes() == before, "the good recording was not overwritten"


def test_sigterm_during_deploy_leaves_nothing_beside_out(store, tmp_path):
    env = {**os.environ, "GLASSES_HOME": str(store.home)}
    proc = start(["deploy", "--board", "laptop", "--no-wheels", "--out",
                  str(tmp_path / "b")], env)
    wait_for(lambda: any(p.name.startswith(".bundle-") for p in tmp_path.iterdir()), proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode in (0, 143)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left in ([], ["b"]), left


def empty_home(store, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "downloads").symlink_to(store.home / "downloads")  # the pinned wheels, cached
    return home


def test_two_prepares_at_once_both_succeed_and_agree(store, tmp_path):
    home = empty_home(store, tmp_path)
    env = {**os.environ, "GLASSES_HOME": str(home)}
    procs = [start(["models", "prepare", "silero-vad", "ppocr-v4"], env) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1] for r in results]
    listed = subprocess.run([sys.executable, "-m", "glasses.cli.main", "models", "list",
                             "--json"], env=env, capture_output=True, text=True, cwd=ROOT)
    models = json.loads(listed.stdout)["models"]
    assert models["silero-vad"]["ok"] and models["ppocr-v4"]["ok"], models
    assert not [p for p in home.rglob("*") if ".partial" in p.name or p.name.startswith(
        ".build-")]


def test_sigterm_during_prepare_leaves_no_temporary_folder(store, tmp_path):
    home = empty_home(store, tmp_path)
    env = {**os.environ, "GLASSES_HOME": str(home)}
    proc = start(["models", "prepare", "smollm2-135m"], env)
    wait_for(lambda: any(p.name.startswith(".build-") for p in home.iterdir()), proc, 120)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert not [p.name for p in home.iterdir() if p.name.startswith(".build-")]


def bomb(path, entry_bytes: int, listed_bytes: int, name: str = "models/x.onnx") -> None:
    """A bundle archive whose manifest lists `name` at `listed_bytes` and whose entry holds
    `entry_bytes` zeros (they compress to next to nothing)."""
    manifest = json.dumps({"format": 1, "board": "laptop", "files": {
        name: {"bytes": listed_bytes, "sha256": "0" * 64}}}).encode()
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        info = tarfile.TarInfo(name)
        info.size = entry_bytes

        class Zeros(io.RawIOBase):
            def __init__(self):
                self.left = entry_bytes

            def readable(self) -> bool:
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n

        tar.addfile(info, io.BufferedReader(Zeros()))


@pytest.mark.parametrize("entry, listed, words", [
    (2_000_000_000, 10, "the manifest says 10"),  # 2 GB of zeros for a 10-byte file
    (10, 50_000_000_000, "50.0 GB"),  # a manifest that lists 50 GB
])
def test_an_archive_bomb_is_refused_before_anything_is_written(tmp_path, entry, listed, words):
    archive = tmp_path / "bomb.tar.gz"
    bomb(archive, min(entry, 2_000_000_000), listed)
    assert archive.stat().st_size < 10_000_000  # 2 GB of zeros at gzip level 1: ~9 MB
    t0 = time.monotonic()
    with pytest.raises(StoreError, match=words):
        open_bundle(archive)
    assert time.monotonic() - t0 < 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.tar.gz"], "nothing written"


def test_a_manifest_with_a_list_of_files_duplicate_keys_or_no_bytes_is_refused(tmp_path):
    for i, text in enumerate(['{"format": 1, "files": []}',
                              '{"format": 1, "files": {"a": {"sha256": "%s"}}}' % ("0" * 64),
                              '{"format": 1, "files": {}, "files": {}}']):
        root = tmp_path / str(i)
        root.mkdir()
        (root / MANIFEST).write_text(text)
        result = subprocess.run([sys.executable, "-m", "glasses.cli.main", "run", "--bundle",
                                 str(root), "--check"], capture_output=True, text=True,
                                cwd=ROOT)
        assert result.returncode == 4, result.stderr
        assert "manifest.json" in result.stderr and "Traceback" not in result.stderr
