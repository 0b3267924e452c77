"""`glasses deploy`: a self-contained bundle for one board (layout in `models/bundle.py`).

The model files come from the prepared store, each verified against the store's sha256
before it is copied (not hard-linked: editing a bundle must never touch the store). The
bundle is made under a temporary name beside PATH and renamed into place, so it is either
whole or absent.
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
                 model: str = "teacher") -> dict:
    """Write the bundle for `board` to `out` (a folder, or a file ending in .tar.gz);
    `model`: the look-and-tell answerer it carries, teacher or student."""
    archive = out.name.endswith(ARCHIVE)
    if out.exists() and (archive or any(out.iterdir())):
        raise BadInput(f"{out}: already exists; choose a new path")
    if not out.parent.is_dir():
        raise BadInput(f"{out.parent}: no such folder")
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=out.parent) as tmp:
        folder = Path(tmp) / "bundle"
        folder.mkdir()
        summary = _fill(store, board, folder, progress, model)
        if archive:
            progress(f"  packing {out.name}")
            partial = Path(tmp) / out.name
            with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
                for path in sorted(folder.rglob("*")):
                    tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
            os.replace(partial, out)
        else:
            if out.exists():
                out.rmdir()  # empty, checked above
            os.replace(folder, out)
    summary["path"] = str(out)
    return summary


def _fill(store: ModelStore, board: BoardProfile, folder: Path, progress: Progress,
          model: str) -> dict:
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
    (folder / "README.md").write_text(_readme(board, requirements, model))
    listed = {p.relative_to(folder).as_posix(): {"sha256": sha256_file(p),
                                                  "bytes": p.stat().st_size}
              for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest = {"format": FORMAT, "board": board.name, "precision": precisions(board),
                "model": model, "files": listed}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return {"board": board.name, "precision": precisions(board), "model": model,
            "files": len(listed),
            "bytes": sum(f["bytes"] for f in listed.values())}


def _readme(board: BoardProfile, requirements: list[str], model: str) -> str:
    p = precisions(board)
    fp16 = ("\nThe board's precision is fp16; no fp16 variants are built yet, so this bundle "
            "carries fp32 models.\n" if board.precision == "fp16" else "")
    return f"""# glasses bundle for {board.name}

{board.description}.

- Threads: {board.threads}; execution providers, in order: {', '.join(board.providers)}
  (each one the installed onnxruntime lacks is skipped; the CPU is the fallback).
- Precision: speech {p['asr']}, vision {p['vision']}, language model {p['lm']}.{fp16}
- Look and tell is answered by the {model}.
- Camera: {board.camera_size[0]}x{board.camera_size[1]} at {board.camera_fps:g} fps;
  display: {board.display.name}.

## Run it

```sh
python3 -m venv venv && . venv/bin/activate
pip install -r requirements.txt      # {', '.join(requirements)}: no torch
pip install --no-deps PATH/TO/glasses  # the assistant itself, from its source
glasses run --bundle . --check       # verify every file against manifest.json
glasses run --bundle . --scenario demo            # the built-in demo, headless
glasses run --bundle . --view 0 --live-mic        # the camera and the microphone
```

`manifest.json` lists the sha256 and size of every file; `glasses run` refuses a bundle
with a missing, truncated, changed or unlisted file.
"""
