"""Deploy bundles: built for every board, verified, and refused when tampered, truncated,
incomplete or escaping their folder; and installed offline from their own wheels into a fresh
environment with no torch, where they play the demo."""

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata

import pytest
from test_cli import ROOT, assert_one_line_error, glasses

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.export.bundle import build_bundle
from glasses.export.bundle_wheels import build_wheelhouse
from glasses.models.bundle import MANIFEST, open_bundle
from glasses.models.deployment import runtime_files


@pytest.fixture(scope="module")
def bundles(store, tmp_path_factory):
    """A folder bundle for every board, without wheels (removed afterwards: they are large)."""
    folder = tmp_path_factory.mktemp("bundles")
    built = {name: folder / name for name in BoardProfile.names()}
    for name, path in built.items():
        build_bundle(store, BoardProfile.by_name(name), path, lambda msg: None, wheels=False)
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
        assert "--no-wheels" in readme and "pip install -r requirements.txt" in readme
        assert not (path / "wheels").exists()
        assert json.loads((path / MANIFEST).read_text())["wheels"] is None
        assert not [p for p in path.rglob("*") if "memory" in p.name or ".db" in p.name]


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


def test_a_run_hashes_what_changed_and_check_hashes_everything(copy, monkeypatch):
    from glasses.models import store as store_module
    monkeypatch.setattr(store_module, "SETTLED_S", 0.0)  # the copy counts as settled at once
    open_bundle(copy)  # hashes every file and remembers them: that record is no stray file
    hashed, real = [], store_module.sha256_file

    def counted(path):
        hashed.append(path)
        return real(path)
    monkeypatch.setattr(store_module, "sha256_file", counted)
    monkeypatch.setattr("glasses.models.bundle.sha256_file", counted)
    open_bundle(copy)
    assert hashed == []
    target = copy / "models" / "silero-vad" / "silero_vad.onnx"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))  # the same size, and the modification time put back
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(StoreError, match="silero_vad.onnx: contents changed"):
        open_bundle(copy)
    assert hashed == [target]
    with pytest.raises(StoreError, match="silero_vad.onnx: contents changed"):
        open_bundle(copy, full=True)
    assert len(hashed) > 10


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
        manifest = b'{"format": 1, "files": {}}'
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
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
    build_bundle(store, BoardProfile.rpi5(), archive, lambda msg: None, wheels=False)
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


def test_deploy_help_names_no_wheels(store):
    result = glasses("deploy", "--help", home=store.home)
    assert result.returncode == 0 and "--no-wheels" in result.stdout
    assert "wheels/" in result.stdout and "--no-index" in result.stdout


@pytest.fixture(scope="module")
def wheeled(store, tmp_path_factory):
    """A laptop (x86_64) bundle with its wheels (fetched once, then from the store's cache)."""
    path = tmp_path_factory.mktemp("wheeled") / "laptop"
    summary = build_bundle(store, BoardProfile.laptop(), path, lambda msg: None)
    yield path, summary
    shutil.rmtree(path)


def clean_pip_env() -> dict[str, str]:
    """This machine's pip settings removed (its find-links, its indexes): the bundle alone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def readme_command(bundle, start: str) -> list[str]:
    lines = [ln.split("  #")[0] for ln in (bundle / "README.md").read_text().splitlines()
             if ln.startswith(start)]
    assert lines, f"the README says no {start!r}"
    return shlex.split(lines[0])


@pytest.mark.slow
def test_the_wheels_are_listed_pinned_and_hold_the_project(wheeled):
    path, summary = wheeled
    manifest = json.loads((path / MANIFEST).read_text())
    files = sorted(p.name for p in (path / "wheels").iterdir())
    assert sorted(manifest["wheels"]["packages"]) == files
    for name in files:
        assert manifest["files"][f"wheels/{name}"]["sha256"], name
    versions = {p["name"].lower(): p["version"] for p in summary["wheels"]["packages"]}
    for name in ("numpy", "onnxruntime", "opencv-python", "hibari-tts"):
        assert versions[name] == metadata.version(name), name  # pinned to this environment
    assert "torch" not in versions
    assert manifest["wheels"]["platform"] == "x86_64"
    assert all(name.endswith(("x86_64.whl", "-none-any.whl", ".tar.gz")) for name in files)
    assert [p["file"] for p in summary["wheels"]["packages"] if p["kind"] == "sdist"] == [
        "PyAudio-0.2.14.tar.gz"]  # PyPI has no PyAudio wheels: carried as source, said so
    assert any("PyAudio" in note and "portaudio19-dev" in note
               for note in summary["wheels"]["notes"])
    assert "portaudio19-dev" in (path / "README.md").read_text()
    project = next((path / "wheels").glob("glasses-*.whl"))
    with zipfile.ZipFile(project) as z:
        names = set(z.namelist())
    for name in ("glasses/__init__.py", "glasses/device/boards.py", "glasses/models/bundle.py",
                 "glasses/simulator/demo/demo.toml", "glasses/simulator/demo/demo.mp4",
                 "glasses/simulator/demo/demo.wav", "glasses/evaluation/routing.tsv",
                 "glasses/pipelines/companion_page.html"):
        assert name in names, name
    assert all(n.startswith(("glasses/", "glasses-")) for n in names)  # one namespace


@pytest.mark.slow
def test_a_fresh_environment_installs_offline_from_the_wheels_and_plays_the_demo(
        wheeled, tmp_path):
    """No PyPI, no torch: the README's own install command, with the bundle's wheels alone."""
    bundle, _ = wheeled
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = clean_pip_env()
    install = readme_command(bundle, "pip install --no-index")
    assert install == ["pip", "install", "--no-index", "--find-links", "wheels/",
                       "glasses[voice]"]
    subprocess.run([str(venv / "bin" / "python"), "-m", *install, "-q"], check=True,
                   cwd=bundle, env=env, timeout=600)
    run = subprocess.run([str(venv / "bin" / "glasses"), "run", "--bundle", str(bundle),
                          "--scenario", "demo", "--mode", "simulated", "--json"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["scenario"]["passed"] == data["scenario"]["graded"] == 2, data["utterances"]
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"],
                            capture_output=True, text=True, env=env).stdout.lower()
    assert "torch" not in freeze and "transformers" not in freeze
    assert "hibari-tts==0.2.1" in freeze
    # the microphone: PyAudio built here from the carried source and its build wheels
    # (this machine has portaudio19-dev and gcc, as the README asks of the board)
    mic = [*install[:-1], "glasses[voice,mic]"]
    assert shlex.join(mic) in (bundle / "README.md").read_text()
    subprocess.run([str(venv / "bin" / "python"), "-m", *mic, "-q"], check=True, cwd=bundle,
                   env=env, timeout=600)
    subprocess.run([str(venv / "bin" / "python"), "-c", "import pyaudio"], check=True)


@pytest.mark.slow
def test_a_tampered_wheel_is_refused(store, wheeled, tmp_path):
    bundle = shutil.copytree(wheeled[0], tmp_path / "b", copy_function=os.link)
    wheel = next((bundle / "wheels").glob("onnxruntime-*.whl"))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.unlink()  # a new file, not the hard-linked original
    wheel.write_bytes(bytes(data))
    result = glasses("run", "--bundle", str(bundle), "--check", home=store.home)
    assert_one_line_error(result, 4, f"wheels/{wheel.name}: contents changed")
    (bundle / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b"PK")
    result = glasses("run", "--bundle", str(bundle), "--check", home=store.home)
    assert_one_line_error(result, 4, "wheels/evil-1.0-py3-none-any.whl: not in the manifest")


@pytest.mark.slow
def test_the_wheel_cache_is_reused_and_checked(store, wheeled, tmp_path):
    """A warm cache downloads nothing; a cached wheel whose sha256 changed is fetched again."""
    cache = shutil.copytree(store.home / "downloads" / "wheels" / "x86_64",
                            tmp_path / "cache" / "x86_64")
    messages = []
    warm = build_wheelhouse(BoardProfile.laptop(), tmp_path / "w1", tmp_path / "cache",
                            messages.append)
    assert warm["downloaded"] == 0, messages
    spoiled = next(cache.glob("flatbuffers-*.whl"))
    spoiled.write_bytes(spoiled.read_bytes()[:-10] + b"0123456789")
    messages.clear()
    again = build_wheelhouse(BoardProfile.laptop(), tmp_path / "w2", tmp_path / "cache",
                             messages.append)
    assert again["downloaded"] == 1 and any("differs from the sha256" in m for m in messages)
    fresh = next((tmp_path / "w2").glob("flatbuffers-*.whl"))
    assert fresh.read_bytes() == next((wheeled[0] / "wheels").glob("flatbuffers-*")).read_bytes()


@pytest.mark.slow
def test_a_wheel_that_cannot_be_fetched_is_one_line_naming_it(store, tmp_path):
    """No index and an empty wheel cache: exit 4, naming the package and --no-wheels."""
    home = tmp_path / "home"
    shutil.copytree(store.home / "models", home / "models", copy_function=os.link)
    shutil.copy2(store.home / "store.json", home / "store.json")
    env = clean_pip_env() | {"GLASSES_HOME": str(home), "PIP_NO_INDEX": "1"}
    result = subprocess.run([sys.executable, "-m", "glasses.cli.main", "deploy", "--board",
                             "rpi5", "--out", str(tmp_path / "b")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert_one_line_error(result, 4, "numpy", "aarch64", "--no-wheels")
    assert not (tmp_path / "b").exists()
    ok = subprocess.run([sys.executable, "-m", "glasses.cli.main", "deploy", "--board", "rpi5",
                         "--out", str(tmp_path / "b"), "--no-wheels", "--json"], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["wheels"] is None and not (tmp_path / "b" / "wheels").exists()
