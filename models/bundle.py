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
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput, StoreError
from glasses.models.store import HashCheck, ModelStore, sha256_file

MANIFEST = "manifest.json"
MAX_MANIFEST = 4_000_000  # bytes
MAX_BUNDLE_BYTES = 16_000_000_000  # what an archive may unpack to, at most
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


def open_bundle(path: str | Path, full: bool = False) -> Bundle:
    """Unpack (an archive, next to itself, once) and verify (`full`: hash every file, even
    those unchanged since they last matched); StoreError for a bundle that is incomplete
    or tampered, BadInput for one that is not a bundle at all."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such bundle")
    root = unpack(path) if path.is_file() else path
    problems, manifest = verify(root, full)
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


def read_manifest(data: bytes, where: str) -> dict:
    """A bundle's manifest, checked for shape: `files` maps each name (once) to its `bytes`
    (an int) and `sha256` (64 hex digits). StoreError naming `where` otherwise."""
    def unique(pairs: list) -> dict:
        keys = [k for k, _ in pairs]
        if dupes := sorted({k for k in keys if keys.count(k) > 1}):
            raise ValueError(f"{dupes[0]!r} is listed twice")
        return dict(pairs)

    try:
        if len(data) > MAX_MANIFEST:
            raise ValueError(f"{len(data)} bytes, more than a manifest's {MAX_MANIFEST}")
        manifest = json.loads(data.decode("utf-8"), object_pairs_hook=unique)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {FORMAT}"
                             if isinstance(manifest, dict) else "not a JSON object")
        files = manifest.get("files")
        if not isinstance(files, dict):
            raise ValueError("`files` must map file names to their bytes and sha256")
        for name, want in files.items():
            if not (isinstance(want, dict) and isinstance(want.get("bytes"), int)
                    and not isinstance(want.get("bytes"), bool) and want["bytes"] >= 0
                    and isinstance(want.get("sha256"), str) and len(want["sha256"]) == 64):
                raise ValueError(f"{name!r}: an entry needs `bytes` (an integer) and "
                                 "`sha256`")
    except (UnicodeDecodeError, ValueError) as e:
        raise StoreError(f"{where}: unreadable ({e})") from None
    return manifest


def verify(root: Path, full: bool = True) -> tuple[list[str], dict]:
    """(problems, manifest): every listed file present with its size and sha256, and no
    file the manifest does not list. Not `full`: a file unchanged since its hash last
    matched is not hashed again (`HashCheck`)."""
    try:
        manifest = read_manifest((root / MANIFEST).read_bytes(), str(root / MANIFEST))
        listed = manifest["files"]
    except FileNotFoundError:
        raise BadInput(f"{root}: not a bundle (no {MANIFEST})") from None
    except OSError as e:
        raise StoreError(f"{root / MANIFEST}: unreadable ({e})") from None
    problems = []
    digest = (lambda file, _: sha256_file(file)) if full else HashCheck(root).digest
    for name, want in sorted(listed.items()):
        file = root / name
        if not _inside(root, file) or not file.is_file():
            problems.append(f"{name}: missing")
        elif file.stat().st_size != want["bytes"]:
            problems.append(f"{name}: {file.stat().st_size} bytes, expected {want['bytes']} "
                            "(truncated or replaced)")
        elif digest(file, want["sha256"]) != want["sha256"]:
            problems.append(f"{name}: contents changed (sha256 differs)")
    present = {name for p in root.rglob("*") if p.is_file()
               and not HashCheck.is_record(name := p.relative_to(root).as_posix())}
    problems += [f"{name}: not in the manifest" for name in sorted(present - set(listed)
                                                                    - {MANIFEST})]
    return problems, manifest


def unpack(archive: Path) -> Path:
    """Extract `archive` (.tar.gz) into a folder beside it, named after it, unless it is
    already there. Before anything is written: every entry is checked (inside the folder,
    a plain file or folder, listed in the manifest with exactly its size), and the total
    against the manifest and the free disk. It is extracted under a temporary name and
    renamed once verified; a failed unpack leaves nothing behind."""
    if not archive.name.endswith(ARCHIVE):
        raise BadInput(f"{archive}: a bundle is a folder or a {ARCHIVE} file")
    root = archive.with_name(archive.name[: -len(ARCHIVE)])
    partial = archive.with_name(f".{root.name}.{os.getpid()}.partial")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise StoreError(f"{archive}: not a bundle ({MANIFEST} is not its first entry)")
            data = tar.extractfile(first).read(MAX_MANIFEST + 1)
            manifest = read_manifest(data, f"{archive}: {MANIFEST}")
            listed = manifest["files"]
            if root.exists():  # unpacked before: only if it is this archive's bundle
                here = root / MANIFEST
                if not here.is_file() or data != here.read_bytes():
                    raise StoreError(f"{root} exists and does not hold {archive.name}'s "
                                     "bundle: move it away, or run the folder itself")
                return root
            total = sum(f["bytes"] for f in listed.values())
            free = shutil.disk_usage(archive.parent).free
            if total > min(MAX_BUNDLE_BYTES, free):
                raise StoreError(f"{archive}: its manifest lists {total / 1e9:.1f} GB; "
                                 f"{min(MAX_BUNDLE_BYTES, free) / 1e9:.1f} GB can be unpacked here")
            members = [first]
            for m in tar:  # streamed: each entry checked as it comes, before extraction
                if m.offset == first.offset:
                    continue  # the manifest, read above
                _check_member(archive, m)
                if m.isfile() and listed.get(m.name, {}).get("bytes") != m.size:
                    what = "not in the manifest" if m.name not in listed else (
                        f"{m.size} bytes, the manifest says {listed[m.name]['bytes']}")
                    raise StoreError(f"{archive}: entry {m.name!r}: {what}: refused")
                members.append(m)
        partial.mkdir()
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(partial, members=_named(tar, members), filter="data")
        problems, _ = verify(partial)
        if problems:
            raise StoreError(f"{archive}: {'; '.join(problems[:3])}")
        os.replace(partial, root)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise StoreError(f"{archive}: cannot unpack ({e}): truncated or not a bundle") from None
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return root


def _named(tar: tarfile.TarFile, checked: list[tarfile.TarInfo]) -> list[tarfile.TarInfo]:
    """The members of a second pass over the archive, each the same as the one checked."""
    want = {(m.name, m.size, m.type) for m in checked}
    members = tar.getmembers()
    if {(m.name, m.size, m.type) for m in members} != want:
        raise StoreError(f"{tar.name}: changed while it was unpacked")
    return members


def _check_member(archive: Path, m: tarfile.TarInfo) -> None:
    name = PurePosixPath(m.name)
    if name.is_absolute() or ".." in name.parts or m.name.startswith(("/", "\\")):
        raise StoreError(f"{archive}: entry {m.name!r} would land outside the bundle: refused")
    if not (m.isfile() or m.isdir()) or m.issparse():
        raise StoreError(f"{archive}: entry {m.name!r} is a link, device or sparse file: "
                         "refused")


def _inside(root: Path, file: Path) -> bool:
    return file.resolve().is_relative_to(root.resolve())
