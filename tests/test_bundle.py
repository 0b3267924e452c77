"""Deploy bundles: built for every board, verified, and refused when tampered, truncated,
incomplete or escaping their folder; and run from a fresh environment with no torch."""

import io
import json
import shutil
import subprocess
import sys
import tarfile

import pytest
from test_cli import ROOT, assert_one_line_error, glasses

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.export.bundle import build_bundle
from glasses.models.bundle import MANIFEST, open_bundle
from glasses.models.deployment import runtime_files


@pytest.fixture(scope="module")
def bundles(store, tmp_path_factory):
    """A folder bundle for every board (removed afterwards: they are large)."""
    folder = tmp_path_factory.mktemp("bundles")
    built = {name: folder / name for name in BoardProfile.names()}
    for name, path in built.items():
        build_bundle(store, BoardProfile.by_name(name), path, lambda msg: None)
    yield built
    shutil.rmtree(folder)


def test_every_board_gets_a_verified_bundle_in_its_precision(bundles):
    for name, path in bundles.items():
        bundle = open_bundle(path)
        board = BoardProfile.by_name(name)
        assert bundle.board == board
        wanted = runtime_files(board)
        have = {m: sorted(f.name for f in e.files) for m, e in bundle.store.entries().items()}
        assert have == {m: sorted(f) for m, f in wanted.items()}
        for model, files in wanted.items():
            for file in files:
                bundle.store.path(model, file)  # verified on load, like any store
        int8 = board.precision == "int8"
        assert ("lm.int8.onnx" in wanted["smollm2-135m"]) == int8
        assert "torch" not in (path / "requirements.txt").read_text()
        readme = (path / "README.md").read_text()
        assert f"glasses bundle for {name}" in readme
        assert ("no fp16 variants" in readme) == (board.precision == "fp16")


@pytest.fixture()
def copy(bundles, tmp_path):
    """A private copy of the laptop bundle, to spoil."""
    return shutil.copytree(bundles["laptop"], tmp_path / "b")


def test_a_changed_file_is_refused(copy):
    target = copy / "models" / "silero-vad" / "silero_vad.onnx"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="silero_vad.onnx: contents changed"):
        open_bundle(copy)


def test_a_truncated_missing_or_extra_file_is_refused(copy):
    lm = copy / "models" / "smollm2-135m" / "lm.json"
    lm.write_bytes(lm.read_bytes()[:100])
    (copy / "board.json").unlink()
    (copy / "models" / "evil.onnx").write_bytes(b"x")
    with pytest.raises(StoreError) as e:
        open_bundle(copy)
    message = str(e.value)
    assert "lm.json: 100 bytes" in message and "truncated" in message
    assert "board.json: missing" in message and "models/evil.onnx: not in the manifest" in message


def test_cli_check_names_the_problem(store, copy):
    (copy / "models" / "ppocr-v4" / "det.onnx").unlink()
    result = glasses("run", "--bundle", str(copy), "--check", home=store.home)
    assert_one_line_error(result, 4, "det.onnx: missing")
    ok = glasses("run", "--bundle", str(ROOT / "README.md"), "--check", home=store.home)
    assert_one_line_error(ok, 3, "folder or a .tar.gz")


def evil_archive(path, name: str, kind=tarfile.REGTYPE, link: str = "") -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        info.size = 4 if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(b"evil") if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize("name, kind, link", [
    ("../escaped.txt", tarfile.REGTYPE, ""), ("/tmp/escaped-glasses.txt", tarfile.REGTYPE, ""),
    ("models/link", tarfile.SYMTYPE, "/etc/passwd"), ("models/hard", tarfile.LNKTYPE, "x"),
])
def test_archive_entries_that_would_escape_are_refused(tmp_path, name, kind, link):
    archive = tmp_path / "evil.tar.gz"
    evil_archive(archive, name, kind, link)
    with pytest.raises(StoreError, match="refused"):
        open_bundle(archive)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "evil").exists(), "nothing is unpacked"


def test_a_truncated_archive_is_refused(store, tmp_path):
    archive = tmp_path / "b.tar.gz"
    build_bundle(store, BoardProfile.rpi5(), archive, lambda msg: None)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    result = glasses("run", "--bundle", str(cut), "--check", home=store.home)
    assert_one_line_error(result, 4, "cut.tar.gz", "truncated")
    result = glasses("run", "--bundle", str(archive), "--check", "--json", home=store.home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verified"] is True and (tmp_path / "b" / MANIFEST).exists()
    archive.unlink()
    shutil.rmtree(tmp_path / "b")


def test_deploy_refuses_to_overwrite(store, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    result = glasses("deploy", "--board", "rpi5", "--out", str(tmp_path / "b"), home=store.home)
    assert_one_line_error(result, 3, "already exists")
    assert (tmp_path / "b" / "keep.txt").read_text() == "mine"


def test_a_fresh_environment_with_only_the_run_time_answers_from_a_bundle(bundles, tmp_path):
    """No torch, no extras: the bundle's requirements and the project alone."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(bundles["rpi5"] / "requirements.txt")], check=True,
                   timeout=900)
    source = shutil.copytree(ROOT, tmp_path / "src", ignore=shutil.ignore_patterns(
        ".venv", ".git", ".glasses-home", "build", "*.egg-info", "__pycache__", ".*_cache"))
    subprocess.run([*pip, "--no-deps", str(source)], check=True, timeout=900)
    run = subprocess.run([str(venv / "bin" / "glasses"), "run", "--bundle",
                          str(bundles["rpi5"]), "--scenario", "demo", "--mode", "simulated",
                          "--json"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["scenario"]["passed"] == data["scenario"]["graded"] == 2, data["utterances"]
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"],
                            capture_output=True, text=True).stdout.lower()
    assert "torch" not in freeze and "transformers" not in freeze
