"""The model store: names mapped to files, their sha256 and where they came from.

Layout under `$GLASSES_HOME` (default `$XDG_CACHE_HOME/glasses`, else `~/.cache/glasses`):

    store.json              {"models": {NAME: {"files": {FILE: {"sha256", "bytes"}},
                                               "provenance": {...}}}}
    models/NAME/FILE        the files themselves

Loading a file verifies its hash; a changed file is refused. A file's hash is computed
once and remembered in `.verified.json` with the file's identity (device, inode, size,
modification and change times, see `HashCheck`): a later load of the same, unchanged file
skips the hashing, and any write to it, even one that puts the old modification time back,
changes its change time and makes it hashed again. `verify` (`glasses models list`,
`glasses doctor`) always hashes. Nothing is downloaded here: `glasses models prepare`
fills the store.
"""

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from glasses.device.errors import StoreError

MANIFEST = "store.json"
PREPARE_HINT = "run `glasses models prepare`"


BUILD_PREFIX = ".build-"  # temporary build folders in the store home: .build-PID-XXXX
VERIFIED = ".verified.json"  # hashes already checked, with the identity of each file
RECORD_PREFIX = ".verified."  # that record and the temporary files it is written through
SETTLED_S = 2.0  # a file changed this recently is hashed at every check (its times are coarse)


def default_home() -> Path:
    if home := os.environ.get("GLASSES_HOME"):
        return Path(home).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "glasses"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class HashCheck:
    """Whether files under `root` have the sha256 they should, hashing each file only when
    it is new or changed since it last matched.

    What matched is remembered in `root/.verified.json`: the file's sha256 with its device,
    inode, size and modification and change times (nanoseconds). The change time is set by
    the kernel at every write or attribute change and no call sets it back, so a file whose
    identity is the same was not written since it matched. A file modified less than
    `SETTLED_S` before it was hashed is not remembered: a write in the same clock tick could
    leave its times unchanged. What this does not see is a disk corrupting bytes underneath
    the file system; `glasses models list` and `glasses doctor` hash every file.
    A record that cannot be read or written (a read-only bundle) only means hashing again.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._known: dict | None = None
        self._lock = threading.Lock()  # threads may load models at the same time

    def __reduce__(self):  # to another process (a spawned evaluation): the root alone
        return HashCheck, (self.root,)

    def digest(self, path: Path, expected: str) -> str:
        """`path`'s sha256: `expected` without reading the file when it matched before and is
        unchanged since, else computed (and remembered when it matches)."""
        key = path.relative_to(self.root).as_posix()
        identity = _identity(path)
        with self._lock:
            if self._records().get(key) == [expected, *identity]:
                return expected
        digest = sha256_file(path)
        if digest == expected and time.time_ns() - max(identity[3:]) > SETTLED_S * 1e9:
            with self._lock:
                self._known[key] = [digest, *identity]
                self._save()
        return digest

    def _records(self) -> dict:
        if self._known is None:
            try:
                known = json.loads((self.root / VERIFIED).read_text())
                self._known = known if isinstance(known, dict) else {}
            except (OSError, ValueError):
                self._known = {}
        return self._known

    @staticmethod
    def is_record(name: str) -> bool:
        """Whether `name` (relative to the root) is this record or one being written."""
        return name == VERIFIED or (name.startswith(RECORD_PREFIX) and "/" not in name)

    def _save(self) -> None:
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=RECORD_PREFIX, suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(self._known, f)
            os.replace(tmp, self.root / VERIFIED)
        except OSError:
            pass  # not writable: the next start hashes again


def _identity(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


@dataclass(frozen=True)
class StoredFile:
    name: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class ModelEntry:
    name: str
    files: tuple[StoredFile, ...]
    provenance: dict

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)


class ModelStore:
    def __init__(self, home: Path | None = None):
        self.home = Path(home) if home else default_home()
        self.manifest_path = self.home / MANIFEST
        self._hashes = HashCheck(self.home)

    # -- reading -----------------------------------------------------------------

    def entries(self) -> dict[str, ModelEntry]:
        """Every model recorded in the manifest; {} when the store is not prepared."""
        if not self.manifest_path.exists():
            return {}
        try:
            data = json.loads(self.manifest_path.read_text())
            return {
                name: ModelEntry(
                    name,
                    tuple(StoredFile(f, v["sha256"], v["bytes"]) for f, v in m["files"].items()),
                    m.get("provenance", {}),
                )
                for name, m in data["models"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise StoreError(
                f"{self.manifest_path}: unreadable store manifest ({e}); {PREPARE_HINT}"
            ) from None

    def entry(self, model: str) -> ModelEntry:
        entries = self.entries()
        if model in entries:
            return entries[model]
        if not entries:
            raise StoreError(f"model store {self.home} is not prepared; {PREPARE_HINT}")
        raise StoreError(f"model {model!r} is not in the store {self.home}; {PREPARE_HINT}")

    def path(self, model: str, file: str) -> Path:
        """The verified path of one file of `model`; raises StoreError if missing or changed."""
        entry = self.entry(model)
        stored = next((f for f in entry.files if f.name == file), None)
        if stored is None:
            raise StoreError(f"model {model!r} has no file {file!r}; {PREPARE_HINT}")
        path = self.home / "models" / model / file
        problem = self._check(path, stored, self._hashes.digest)
        if problem:
            raise StoreError(f"{path}: {problem}; {PREPARE_HINT} to rebuild it")
        return path

    def verify(self, model: str) -> list[str]:
        """Problems with `model`'s files (missing, wrong size, wrong hash); [] when sound."""
        entry = self.entry(model)
        problems = []
        for stored in entry.files:
            path = self.home / "models" / model / stored.name
            if problem := self._check(path, stored, lambda p, _: sha256_file(p)):
                problems.append(f"{path}: {problem}")
        return problems

    @staticmethod
    def _check(path: Path, stored: StoredFile, digest_of) -> str | None:
        if not path.is_file():
            return "missing"
        size = path.stat().st_size
        if size != stored.bytes:
            return f"size {size} bytes, expected {stored.bytes} (truncated or replaced)"
        digest = digest_of(path, stored.sha256)
        if digest != stored.sha256:
            return (
                f"sha256 mismatch (expected {stored.sha256[:12]}..., found {digest[:12]}...): "
                "the file was changed or corrupted"
            )
        return None

    # -- writing -----------------------------------------------------------------

    def add(self, model: str, files: dict[str, Path], provenance: dict) -> ModelEntry:
        """Copy `files` (store name -> source path) into the store and record them.

        Files are written beside their final place and renamed, then the manifest is
        replaced atomically, so an interrupted add leaves the previous state intact.
        """
        folder = self.home / "models" / model
        folder.mkdir(parents=True, exist_ok=True)
        stored = []
        for name, src in files.items():
            tmp = folder / f".{name}.{os.getpid()}.partial"
            shutil.copyfile(src, tmp)
            stored.append(StoredFile(name, sha256_file(tmp), tmp.stat().st_size))
            os.replace(tmp, folder / name)
        entry = ModelEntry(model, tuple(stored), provenance)
        with self._locked():  # another process may be adding a model at the same time
            self._write_manifest({**self.entries(), model: entry})
        return entry

    def build_dir(self) -> tempfile.TemporaryDirectory:
        """A temporary folder in the store home for a build, named after this process
        (`.build-PID-...`: a later run removes those whose process is gone)."""
        self.home.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=f"{BUILD_PREFIX}{os.getpid()}-",
                                           dir=self.home)

    @contextmanager
    def building(self, model: str) -> Iterator[None]:
        """Held while `model` is built: a second process building it waits, then finds it
        built (the build's own files have per-process names)."""
        with self._locked(f".lock-{model}"):
            yield

    @contextmanager
    def _locked(self, name: str = ".lock") -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / name, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write_manifest(self, entries: dict[str, ModelEntry]) -> None:
        data = {
            "models": {
                e.name: {
                    "files": {f.name: {"sha256": f.sha256, "bytes": f.bytes} for f in e.files},
                    "provenance": e.provenance,
                }
                for e in sorted(entries.values(), key=lambda e: e.name)
            }
        }
        self.home.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.home, prefix=".store.", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, self.manifest_path)
