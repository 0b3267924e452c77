"""`glasses deploy`: a self-contained bundle for one board (layout in `models/bundle.py`).

The model files come from the prepared store, each verified against the store's sha256
before it is copied (not hard-linked: editing a bundle must never touch the store). The
bundle is made under a temporary name beside PATH and renamed into place, so it is either
whole or absent. `wheels/` (unless `wheels=False`, `--no-wheels`) carries the project and
its packages for the board's platform (`export/bundle_wheels.py`), so the board installs
offline.
"""

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.export.bundle_wheels import INSTALL_EXTRAS, PYTHON, build_wheelhouse
from glasses.models.bundle import ARCHIVE, BOARD, FORMAT, MANIFEST
from glasses.models.deployment import precisions, runtime_files
from glasses.models.store import MANIFEST as STORE_MANIFEST
from glasses.models.store import ModelStore, sha256_file

Progress = Callable[[str], None]


def runtime_requirements() -> list[str]:
    """The project's own dependencies without extras: what a board installs (no torch)."""
    try:
        return [r for r in metadata.requires("glasses") or () if "extra ==" not in r]
    except metadata.PackageNotFoundError:
        raise BadInput("the glasses package is not installed (pip install -e .): its "
                       "run-time requirements are read from its metadata") from None


def build_bundle(store: ModelStore, board: BoardProfile, out: Path, progress: Progress,
                 model: str = "teacher", wheels: bool = True) -> dict:
    """Write the bundle for `board` to `out` (a folder, or a file ending in .tar.gz);
    `model`: the look-and-tell answerer it carries, teacher or student; `wheels`: carry
    `wheels/` (fetched from PyPI at deploy time, cached in the store's downloads/wheels)."""
    archive = out.name.endswith(ARCHIVE)
    if out.exists() and (archive or any(out.iterdir())):
        raise BadInput(f"{out}: already exists; choose a new path")
    if not out.parent.is_dir():
        raise BadInput(f"{out.parent}: no such folder")
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=out.parent) as tmp:
        folder = Path(tmp) / "bundle"
        folder.mkdir()
        summary = _fill(store, board, folder, progress, model, wheels)
        if archive:
            progress(f"  packing {out.name}")
            partial = Path(tmp) / out.name
            with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
                # the manifest first: unpacking checks every later entry against it
                for path in [folder / MANIFEST, *sorted(p for p in folder.rglob("*")
                                                        if p != folder / MANIFEST)]:
                    tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
            os.replace(partial, out)
        else:
            if out.exists():
                out.rmdir()  # empty, checked above
            os.replace(folder, out)
    summary["path"] = str(out)
    return summary


def _fill(store: ModelStore, board: BoardProfile, folder: Path, progress: Progress,
          model: str, wheels: bool) -> dict:
    entries = store.entries()
    store_manifest = {"models": {}}
    for entry_name, names in runtime_files(board, vlm_model=model).items():
        entry = store.entry(entry_name)
        progress(f"  {entry_name}: {', '.join(names)}")
        (folder / "models" / entry_name).mkdir(parents=True, exist_ok=True)
        files = {}
        for name in names:
            source = store.path(entry_name, name)  # verified against the store's sha256
            shutil.copyfile(source, folder / "models" / entry_name / name)
            stored = next(f for f in entry.files if f.name == name)
            files[name] = {"sha256": stored.sha256, "bytes": stored.bytes}
        store_manifest["models"][entry_name] = {"files": files,
                                                "provenance": entries[entry_name].provenance}
    (folder / STORE_MANIFEST).write_text(json.dumps(store_manifest, indent=1))
    (folder / BOARD).write_text(json.dumps(board.to_dict(), indent=1))
    requirements = runtime_requirements()
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n")
    house = None
    if wheels:
        house = build_wheelhouse(board, folder / "wheels",
                                 store.home / "downloads" / "wheels", progress)
    else:
        progress("  wheels: left out (--no-wheels): the board installs from PyPI")
    (folder / "README.md").write_text(_readme(board, requirements, model, house))
    listed = {p.relative_to(folder).as_posix(): {"sha256": sha256_file(p),
                                                  "bytes": p.stat().st_size}
              for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest = {"format": FORMAT, "board": board.name, "precision": precisions(board),
                "model": model, "files": listed, "wheels": _manifest_wheels(house)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return {"board": board.name, "precision": precisions(board), "model": model,
            "files": len(listed),
            "bytes": sum(f["bytes"] for f in listed.values()), "wheels": house}


def _manifest_wheels(house: dict | None) -> dict | None:
    """What `wheels/` is for (the files' hashes are under "files", like every file's)."""
    if house is None:
        return None
    return {"platform": house["platform"], "python": house["python"],
            "glibc": house["glibc"], "install": f"glasses[{INSTALL_EXTRAS}]",
            "source_only": house["source_only"],
            "packages": {p["file"]: {k: p[k] for k in ("name", "version", "kind", "for")}
                         for p in house["packages"]}}


def _readme(board: BoardProfile, requirements: list[str], model: str,
            house: dict | None) -> str:
    p = precisions(board)
    fp16 = ("\nThe board's precision is fp16; no fp16 variants are built yet, so this bundle "
            "carries fp32 models.\n" if board.precision == "fp16" else "")
    install = _offline(house) if house else _online(requirements)
    return f"""# glasses bundle for {board.name}

{board.description}.

- Threads: {board.threads}; execution providers, in order: {', '.join(board.providers)}
  (each one the installed onnxruntime lacks is skipped; the CPU is the fallback).
- Precision: speech {p['asr']}, vision {p['vision']}, language model {p['lm']}.{fp16}
- Look and tell is answered by the {model}.
- Camera: {board.camera_size[0]}x{board.camera_size[1]} at {board.camera_fps:g} fps;
  display: {board.display.name}.
{install}
`manifest.json` lists the sha256 and size of every file{' (the wheels too)' if house else ''};
`glasses run` refuses a bundle with a missing, truncated, changed or unlisted file.
"""


def _offline(house: dict) -> str:
    """How to install from `wheels/`, with no network."""
    rows = "\n".join(f"| {q['name']} | {q['version']} | `{q['file']}` | "
                     f"{q['bytes'] / 1e6:.2f} | {q['for']} |" for q in house["packages"])
    sdists = [q for q in house["packages"] if q["kind"] == "sdist"]
    built = ", ".join(q["name"] for q in house["packages"] if q["for"].startswith("building"))
    mic = "".join(f"""
The live microphone (`--live-mic`) needs {q['name']}, which PyPI offers only as source (no
wheels for Linux): `wheels/` carries `{q['file']}` and what it builds with ({built}), but
building it on the board needs {house['source_only'][q['name']]}, installed beforehand (from
the board's package mirror):

```sh
sudo apt install portaudio19-dev python3-dev gcc
pip install --no-index --find-links wheels/ 'glasses[{INSTALL_EXTRAS},mic]'
glasses run --bundle . --view 0 --live-mic        # the camera and the microphone
```
""" for q in sdists)
    return f"""
## Install it, offline

`wheels/` holds the assistant itself and every package it needs on this board (Linux
{house['platform']}, CPython {PYTHON}, glibc {house['glibc']} or newer: Debian 11, Ubuntu 20.04,
Raspberry Pi OS 11 and later; pip 20.3 or newer). No torch, and no network; in this folder:

```sh
python3.11 -m venv venv && . venv/bin/activate    # Debian: apt install python3.11-venv
pip install --no-index --find-links wheels/ 'glasses[{INSTALL_EXTRAS}]'
glasses run --bundle . --check                    # verify every file against manifest.json
glasses run --bundle . --scenario demo            # the built-in demo, headless
glasses run --bundle . --view 0 --audio q.wav     # the camera, a recorded question
```
{mic}
| package | version | file | MB | for |
| --- | --- | --- | --- | --- |
{rows}
"""


def _online(requirements: list[str]) -> str:
    """How to install with PyPI access (a bundle made with --no-wheels)."""
    return f"""
## Install it (needs PyPI)

This bundle was made with `glasses deploy --no-wheels`: it carries no `wheels/`, so the
board installs the packages from PyPI and the assistant from its source:

```sh
python3 -m venv venv && . venv/bin/activate
pip install -r requirements.txt      # {', '.join(requirements)}: no torch
pip install --no-deps PATH/TO/glasses  # the assistant itself, from its source
glasses run --bundle . --check       # verify every file against manifest.json
glasses run --bundle . --scenario demo            # the built-in demo, headless
glasses run --bundle . --view 0 --live-mic        # the camera and the microphone
```

For an offline install, deploy again without `--no-wheels`.
"""
