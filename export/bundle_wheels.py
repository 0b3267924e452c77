"""A bundle's `wheels/`: the project and every package it needs on the board, for the
board's platform, so the board installs with `pip install --no-index --find-links wheels/`.

The project's wheel is built from its source tree (copied first, so the build leaves nothing
in the repository). Its requirements (run time, and the `voice` and `mic` extras the board's
README promises) are followed through each wheel's own metadata, evaluated for the board
(Linux, its CPU, CPython 3.11); each package is pinned to the version installed here when
that version satisfies the requirement, else the newest that does. Downloads are cached in
STORE/downloads/wheels/ARCH/ with their sha256 in index.json, checked on every reuse, so a
second deploy needs no network. PyAudio has no wheels on PyPI: its source is carried with
what it builds with, and the board's README says what it needs. At the end pip itself
resolves `glasses[voice]` from the folder alone, offline, for the board's platform.
"""

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from glasses.device.boards import BoardProfile
from glasses.device.errors import StoreError
from glasses.models.store import sha256_file

Progress = Callable[[str], None]

PYTHON = "3.11"  # the board's CPython (Debian 12 and Raspberry Pi OS 12 ship it)
ABI = "cp311"
GLIBC = 31  # newest glibc minor a wheel may need: Debian 11, Ubuntu 20.04 and later
BOARD_ARCH = {"laptop": "x86_64", "rpi5": "aarch64", "jetson-orin-nano": "aarch64",
              "xr-phone": "aarch64"}
EXTRAS = ("voice", "mic")  # what the board's README promises
INSTALL_EXTRAS = "voice"  # what installs from wheels alone
SOURCE_ONLY = {"pyaudio": "portaudio19-dev, python3-dev and a C compiler (gcc)"}
ROOT = Path(__file__).resolve().parents[1]  # the source tree (export/ sits at its top)
_IGNORE = shutil.ignore_patterns(".venv", ".git", ".glasses-home", "build", "dist", "out",
                                 "*.egg-info", "__pycache__", ".*_cache", "tests")


def board_arch(board: BoardProfile) -> str:
    """The board's CPU as a wheel platform suffix (x86_64 or aarch64)."""
    try:
        return BOARD_ARCH[board.name]
    except KeyError:
        raise StoreError(f"board {board.name}: no wheel platform known for it; deploy with "
                         "--no-wheels") from None


def platform_tags(arch: str) -> list[str]:
    """pip --platform values: manylinux for glibc 2.GLIBC down to the oldest tags."""
    oldest = 5 if arch == "x86_64" else 17
    tags = [f"manylinux_2_{v}_{arch}" for v in range(GLIBC, oldest - 1, -1)]
    tags.append(f"manylinux2014_{arch}")
    if arch == "x86_64":
        tags += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    return tags


def _target_flags(arch: str) -> list[str]:
    flags = [f"--platform={t}" for t in platform_tags(arch)]
    return flags + ["--python-version", PYTHON, "--implementation", "cp", "--abi", ABI]


def _marker_env(arch: str, extra: str = "") -> dict[str, str]:
    return {"platform_machine": arch, "sys_platform": "linux", "platform_system": "Linux",
            "os_name": "posix", "python_version": PYTHON, "python_full_version": PYTHON + ".0",
            "implementation_name": "cpython", "implementation_version": PYTHON + ".0",
            "platform_python_implementation": "CPython", "platform_release": "",
            "platform_version": "", "extra": extra}


def build_wheelhouse(board: BoardProfile, folder: Path, cache: Path, progress: Progress) -> dict:
    """Fill `folder` with the project's wheel and its packages for `board`; `cache`: the
    store's downloads/wheels. Returns what it carries; StoreError naming a package that
    cannot be fetched."""
    start = time.monotonic()
    arch = board_arch(board)
    folder.mkdir(parents=True)
    project = build_project_wheel(folder, progress)
    carried = [{"name": "glasses", "version": _wheel_meta(project)["Version"],
                "file": project.name, "bytes": project.stat().st_size, "kind": "wheel",
                "for": "the assistant", "cached": False}]
    queue = [(Requirement(r), extra or "run time") for r, extra in _requires(project, arch,
                                                                             EXTRAS)]
    seen = {"glasses"}
    notes = []
    while queue:
        req, why = queue.pop(0)
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        got, note = _fetch(req, arch, cache / arch, progress)
        notes += [note] if note else []
        shutil.copyfile(got["path"], folder / got["file"])
        carried.append({k: v for k, v in got.items() if k != "path"} | {"for": why})
        if got["kind"] == "wheel":
            queue += [(Requirement(r), why) for r, _ in _requires(got["path"], arch, req.extras)]
        else:
            queue += [(Requirement(r), f"building {req.name}") for r in _build_requires(got)]
    check_offline(folder, arch)
    downloaded = [c for c in carried[1:] if not c["cached"]]
    return {"platform": arch, "python": ABI, "glibc": f"2.{GLIBC}", "packages": carried,
            "bytes": sum(c["bytes"] for c in carried), "downloaded": len(downloaded),
            "downloaded_bytes": sum(c["bytes"] for c in downloaded),
            "seconds": round(time.monotonic() - start, 1), "notes": notes,
            "source_only": {c["name"]: SOURCE_ONLY[canonicalize_name(c["name"])]
                            for c in carried if c["kind"] == "sdist"}}


def build_project_wheel(folder: Path, progress: Progress) -> Path:
    """The glasses wheel, built from a copy of the source tree into `folder`, and checked
    to hold every module and package-data file pyproject.toml names."""
    if not (ROOT / "pyproject.toml").is_file():
        raise StoreError(f"{ROOT}: no pyproject.toml; the glasses wheel is built from the "
                         "source tree (an editable install); deploy with --no-wheels")
    progress("  wheels: building glasses from the source tree")
    with tempfile.TemporaryDirectory(prefix="glasses-wheel-") as tmp:
        source = shutil.copytree(ROOT, Path(tmp) / "src", ignore=_IGNORE)
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "--disable-pip-version-check", "-q", str(source), "-w", str(out)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(out.glob("glasses-*.whl")) if out.is_dir() else []
        if run.returncode != 0 or len(wheels) != 1:
            raise StoreError(f"cannot build the glasses wheel: {_last_error(run)}")
        missing = _missing_from_wheel(source, wheels[0])
        if missing:
            raise StoreError(f"{wheels[0].name} lacks {', '.join(missing[:5])}"
                             f"{' and more' if len(missing) > 5 else ''}")
        return Path(shutil.copy2(wheels[0], folder / wheels[0].name))


def _missing_from_wheel(source: Path, wheel: Path) -> list[str]:
    tool = tomllib.loads((source / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs, data = tool.get("package-dir", {}), tool.get("package-data", {})
    want = []
    for package in tool["packages"]:
        here = source / dirs.get(package, package.replace(".", "/"))
        files = list(here.glob("*.py"))
        for pattern in data.get(package, []):
            files += [f for f in here.glob(pattern) if f.is_file()]
        want += [f"{package.replace('.', '/')}/{f.relative_to(here).as_posix()}" for f in files]
    with zipfile.ZipFile(wheel) as z:
        have = set(z.namelist())
    return sorted(set(want) - have)


def _requires(dist: Path, arch: str, extras) -> list[tuple[str, str]]:
    """(requirement without its marker, the extra that asks for it or "") for the board."""
    found = []
    for line in _wheel_meta(dist).get_all("Requires-Dist") or []:
        req = Requirement(line)
        for extra in ("", *sorted(extras)):
            if req.marker is None or req.marker.evaluate(_marker_env(arch, extra)):
                req.marker = None
                found.append((str(req), extra))
                break
    return found


def _wheel_meta(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(z.read(name).decode())


def _build_requires(got: dict) -> list[str]:
    """An sdist's [build-system] requires (pip's default without a pyproject.toml)."""
    with tarfile.open(got["path"]) as tar:
        tops = [m for m in tar.getmembers() if m.name.count("/") == 1
                and m.name.endswith("/pyproject.toml")]
        if not tops:
            return ["setuptools>=40.8.0", "wheel"]
        text = tar.extractfile(tops[0]).read().decode()
    return tomllib.loads(text).get("build-system", {}).get("requires", [])


def _pinned(req: Requirement) -> str | None:
    """name==VERSION installed here, when it satisfies `req`."""
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return None
    return f"{req.name}=={version}" if req.specifier.contains(version, prereleases=True) else None


def _fetch(req: Requirement, arch: str, cache: Path, progress: Progress) -> tuple[dict, str]:
    """(the file, from the cache or PyPI; a note when it is not what was asked for)."""
    source = canonicalize_name(req.name) in SOURCE_ONLY
    spec = f"{req.name}{req.specifier}"
    pinned = _pinned(req)
    tries = [(r, sdist) for r in dict.fromkeys([pinned, spec] if pinned else [spec])
             for sdist in ([False, True] if source else [False])]
    got, errors = None, []
    for request, sdist in tries:  # the cache first, for every choice: no network when warm
        if got := _cached(request, sdist, cache, progress):
            break
    else:
        for request, sdist in tries:
            got, error = _download(request, sdist, arch, cache, progress)
            if got:
                break
            errors.append(error)
    if got:
        note = ""
        if got["kind"] == "sdist":
            note = (f"{req.name} has no {arch} wheel on PyPI: carrying its source "
                    f"{got['file']}, which needs {SOURCE_ONLY[canonicalize_name(req.name)]} "
                    "on the board to build")
        elif pinned and got["version"] != pinned.split("==")[1]:
            note = f"{pinned} (installed here) has no {arch} wheel: carrying {got['version']}"
        if note:
            progress(f"  wheels: note: {note}")
        return got, note
    raise StoreError(f"could not fetch a {arch} CPython {PYTHON} wheel of {req.name} "
                     f"({' nor '.join(r for r in [pinned, spec] if r)}): {errors[-1]}; "
                     "deploy with --no-wheels to leave the wheels out")


def _key(request: str, sdist: bool) -> str:
    return f"{request} ({'sdist' if sdist else 'wheel'})"


def _index(cache: Path) -> dict:
    path = cache / "index.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _cached(request: str, sdist: bool, cache: Path, progress: Progress) -> dict | None:
    """The cached file for `request`, if its sha256 is still the one recorded."""
    hit = _index(cache).get(_key(request, sdist))
    if not hit or not (cache / hit["file"]).is_file():
        return None
    if sha256_file(cache / hit["file"]) != hit["sha256"]:
        progress(f"  wheels: cached {hit['file']} differs from the sha256 recorded when it was "
                 "downloaded: fetching it again")
        return None
    progress(f"  wheels: {request}: cached {hit['file']} (sha256 checked)")
    return {**hit, "path": cache / hit["file"], "cached": True}


def _download(request: str, sdist: bool, arch: str, cache: Path,
              progress: Progress) -> tuple[dict | None, str]:
    """(the file fetched by pip into the cache and recorded there, or None and pip's error)."""
    progress(f"  wheels: downloading {request} ({'source' if sdist else arch})")
    start = time.monotonic()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q",
               "--disable-pip-version-check", "-d", tmp, request]
        cmd += (["--no-binary=:all:", "--no-build-isolation"] if sdist
                else ["--only-binary=:all:", *_target_flags(arch)])
        run = subprocess.run(cmd, capture_output=True, text=True)
        files = list(Path(tmp).iterdir())
        if run.returncode != 0 or len(files) != 1:
            return None, _last_error(run)
        file = files[0]
        name, version = _name_version(file)
        entry = {"name": name, "version": version, "file": file.name,
                 "sha256": sha256_file(file), "bytes": file.stat().st_size,
                 "kind": "sdist" if sdist else "wheel"}
        os.replace(file, cache / file.name)
    index = _index(cache)
    index[_key(request, sdist)] = entry
    partial = cache / "index.json.partial"
    partial.write_text(json.dumps(index, indent=1))
    os.replace(partial, cache / "index.json")
    progress(f"  wheels: {entry['file']}: {entry['bytes'] / 1e6:.1f} MB in "
             f"{time.monotonic() - start:.1f} s")
    return {**entry, "path": cache / entry["file"], "cached": False}, ""


def _name_version(file: Path) -> tuple[str, str]:
    if file.name.endswith(".whl"):
        meta = _wheel_meta(file)
        return meta["Name"], meta["Version"]
    name, _, version = file.name.removesuffix(".tar.gz").removesuffix(".zip").rpartition("-")
    return name, version


def check_offline(folder: Path, arch: str) -> list[str]:
    """pip resolves glasses[INSTALL_EXTRAS] from `folder` alone (no index, no pip config),
    for the board's platform; the files it would install, or StoreError."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    with tempfile.TemporaryDirectory(prefix="glasses-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "-q", "--no-index",
               "--disable-pip-version-check", "--find-links", str(folder), "--report",
               str(report), "--target", str(Path(tmp) / "target"), "--only-binary=:all:",
               *_target_flags(arch), f"glasses[{INSTALL_EXTRAS}]"]
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if run.returncode != 0 or not report.is_file():
            raise StoreError(f"the wheels for {arch} do not install offline: {_last_error(run)}")
        return [i["download_info"]["url"].rsplit("/", 1)[-1]
                for i in json.loads(report.read_text())["install"]]


def _last_error(run: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (run.stderr + run.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors or lines or ["no output"])[0 if errors else -1].removeprefix("ERROR: ")
