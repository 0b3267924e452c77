import os

import pytest

from glasses.device.errors import StoreError
from glasses.models import store as store_module
from glasses.models.store import VERIFIED, ModelStore, sha256_file


@pytest.fixture
def filled(tmp_path):
    src = tmp_path / "weights.bin"
    src.write_bytes(bytes(range(256)) * 64)
    store = ModelStore(tmp_path / "home")
    store.add("toy", {"weights.bin": src}, {"package": "toy-weights", "version": "1.0"})
    return store, src


def test_added_files_load_verified_with_their_provenance(filled):
    store, src = filled
    path = store.path("toy", "weights.bin")
    assert path.read_bytes() == src.read_bytes()
    entry = store.entry("toy")
    assert entry.files[0].sha256 == sha256_file(src)
    assert entry.provenance == {"package": "toy-weights", "version": "1.0"}
    assert store.verify("toy") == []
    assert not list(path.parent.glob(".*partial"))  # no temporary file left behind


def test_a_changed_file_is_refused_naming_it(filled):
    store, _ = filled
    path = store.home / "models" / "toy" / "weights.bin"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="sha256 mismatch") as info:
        store.path("toy", "weights.bin")
    assert str(path) in str(info.value)


def test_a_truncated_or_missing_file_is_refused(filled):
    store, _ = filled
    path = store.home / "models" / "toy" / "weights.bin"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(StoreError, match="truncated"):
        store.path("toy", "weights.bin")
    path.unlink()
    assert "missing" in store.verify("toy")[0]


def test_unprepared_store_unknown_model_and_garbled_manifest(tmp_path, filled):
    with pytest.raises(StoreError, match="not prepared"):
        ModelStore(tmp_path / "empty").path("silero-vad", "silero_vad.onnx")
    store, _ = filled
    with pytest.raises(StoreError, match="'whisper' is not in the store"):
        store.path("whisper", "encoder.onnx")
    store.manifest_path.write_text("{ not json")
    with pytest.raises(StoreError, match="unreadable store manifest"):
        store.entries()


@pytest.fixture
def hashes(monkeypatch):
    """Counts the files hashed (the real hash, counted)."""
    done = []

    def counted(path):
        done.append(path.name)
        return sha256_file(path)
    monkeypatch.setattr(store_module, "sha256_file", counted)
    return done


def flip_keeping_times(path):
    """One byte changed, the size and the modification time put back as they were."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size


def test_a_file_that_matched_is_hashed_again_only_once_changed(filled, hashes, monkeypatch):
    monkeypatch.setattr(store_module, "SETTLED_S", 0.0)  # the file counts as settled at once
    store, _ = filled
    store.path("toy", "weights.bin")
    assert hashes == ["weights.bin"] and (store.home / VERIFIED).is_file()
    ModelStore(store.home).path("toy", "weights.bin")  # a later start: not read again
    assert hashes == ["weights.bin"]
    flip_keeping_times(store.home / "models" / "toy" / "weights.bin")
    with pytest.raises(StoreError, match="sha256 mismatch"):
        ModelStore(store.home).path("toy", "weights.bin")
    assert store.verify("toy") != [] and len(hashes) == 3  # verify always hashes


def test_a_file_written_just_now_or_a_garbled_record_means_hashing(filled, hashes):
    store, _ = filled  # the file was written a moment ago: its times may not show a next write
    for _ in range(2):
        ModelStore(store.home).path("toy", "weights.bin")
    assert hashes == ["weights.bin", "weights.bin"] and not (store.home / VERIFIED).exists()
    (store.home / VERIFIED).write_text("[not a record")
    assert ModelStore(store.home).path("toy", "weights.bin").is_file() and len(hashes) == 3
