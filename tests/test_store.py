import pytest

from glasses.device.errors import StoreError
from glasses.models.store import ModelStore, sha256_file


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
