"""Deploy bundles on the board: unpacked safely, verified file by file, opened as a store.

A bundle (made by `glasses deploy`, `export/bundle.py`) is a folder, or a .tar.gz of one:

    manifest.json     format, board name, answerer, and the sha256 and size of every other file
    board.json        the board profile (threads, providers, precision, camera, display)
    store.json        a model store manifest: the bundle is a store home (`models/`)
    models/NAME/FILE  the model files the assistant loads, in the board's precision
    requirements.txt  the run-time packages (no torch)
    wheels/           the project's wheel and every package it needs for the board's
                      platform, to install with pip --no-index (absent with --no-wheels)
    README.md         how to install and run it on the board

Opening refuses an archive entry that would land outside its folder (absolute paths,
"..", links, devices), a missing, truncated or changed file, and a file the manifest
does not list; the wheels are files like any other, so a changed wheel is refused too.
"""

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput, StoreError
from glasses.models.store import ModelStore, sha256_file

MANIFEST = "manifest.json"
BOARD = "board.json"
FORMAT = 1
ARCHIVE = ".tar.gz"


@dataclass(frozen=True)
class Bundle:
    root: Path
    board: BoardProfile
    store: ModelStore
    files: int
    bytes: int
    model: str = "teacher"  # what answers look-and-tell questions (see models/deployment.py)


def open_bundle(path: str | Path) -> Bundle:
    """Unpack (an archive, next to itself, once) and verify; StoreError for a bundle
    that is incomplete or tampered, BadInput for one that is not a bundle at all."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such bundle")
    root = unpack(path) if path.is_file() else path
    problems, manifest = verify(root)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                          if len(problems) > 5 else "")
        raise StoreError(f"bundle {path} is incomplete or tampered: {shown}")
    try:
        board = BoardProfile.from_dict(json.loads((root / BOARD).read_text()))
    except (OSError, ValueError, BadInput) as e:
        raise StoreError(f"bundle {path}: {BOARD}: {e}") from None
    sizes = [f["bytes"] for f in manifest["files"].values()]
    return Bundle(root, board, ModelStore(root), len(sizes), sum(sizes),
                  manifest.get("model", "teacher"))


def verify(root: Path) -> tuple[list[str], dict]:
    """(problems, manifest): every listed file present with its size and sha256, and no
    file the manifest does not list."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        listed = manifest["files"]
        if manifest.get("format") != FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {FORMAT}")
    except FileNotFoundError:
        raise BadInput(f"{root}: not a bundle (no {MANIFEST})") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{root / MANIFEST}: unreadable ({e})") from None
    problems = []
    for name, want in sorted(listed.items()):
        file = root / name
        if not _inside(root, file) or not file.is_file():
            problems.append(f"{name}: missing")
        elif file.stat().st_size != want["bytes"]:
            problems.append(f"{name}: {file.stat().st_size} bytes, expected {want['bytes']} "
                            "(truncated or replaced)")
        elif sha256_file(file) != want["sha256"]:
            problems.append(f"{name}: contents changed (sha256 differs)")
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    problems += [f"{name}: not in the manifest" for name in sorted(present - set(listed)
                                                                    - {MANIFEST})]
    return problems, manifest


def unpack(archive: Path) -> Path:
    """Extract `archive` (.tar.gz) into a folder beside it, named after it, unless it is
    already there; every entry is checked before anything is written."""
    if not archive.name.endswith(ARCHIVE):
        raise BadInput(f"{archive}: a bundle is a folder or a {ARCHIVE} file")
    root = archive.with_name(archive.name[: -len(ARCHIVE)])
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                _check_member(archive, m)
            if root.exists():  # unpacked before: only if it is this archive's bundle
                listed = tar.extractfile(MANIFEST) if MANIFEST in tar.getnames() else None
                here = root / MANIFEST
                if listed is None or not here.is_file() or listed.read() != here.read_bytes():
                    raise StoreError(f"{root} exists and does not hold {archive.name}'s "
                                     "bundle: move it away, or run the folder itself")
                return root
            root.mkdir(parents=True)
            tar.extractall(root, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise StoreError(f"{archive}: cannot unpack ({e}): truncated or not a bundle") from None
    return root


def _check_member(archive: Path, m: tarfile.TarInfo) -> None:
    name = PurePosixPath(m.name)
    if name.is_absolute() or ".." in name.parts or m.name.startswith(("/", "\\")):
        raise StoreError(f"{archive}: entry {m.name!r} would land outside the bundle: refused")
    if not (m.isfile() or m.isdir()):
        raise StoreError(f"{archive}: entry {m.name!r} is a link or device: refused")


def _inside(root: Path, file: Path) -> bool:
    return file.resolve().is_relative_to(root.resolve())
