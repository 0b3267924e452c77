"""Whisper on onnxruntime: real models on the demo's spoken questions."""

from pathlib import Path

import numpy as np
import pytest

from glasses.device.audio import SAMPLE_RATE, load_audio
from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.evaluation.scoring import normalise_words
from glasses.models.asr import AsrOptions, WhisperOnnx

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "simulator" / "demo" / "demo.wav"


@pytest.fixture(scope="module")
def questions() -> list[np.ndarray]:
    audio = load_audio(DEMO)
    return [audio[int(0.8 * SAMPLE_RATE) : int(3.0 * SAMPLE_RATE)],
            audio[int(5.3 * SAMPLE_RATE) : int(7.6 * SAMPLE_RATE)]]


@pytest.fixture(scope="module")
def asr(store) -> WhisperOnnx:
    return WhisperOnnx(store, BoardProfile.laptop(), AsrOptions("tiny.en"))


def test_transcribes_the_demo_questions(asr, questions):
    first = asr.transcribe(questions[0])
    assert normalise_words(first.text) == ["what", "am", "i", "looking", "at"]
    assert {"read", "for", "me"} <= set(normalise_words(asr.transcribe(questions[1]).text))
    assert set(first.timings_ms) == {"mel", "encoder", "decoder"}


@pytest.fixture(scope="module")
def requests(tmp_path_factory) -> list[tuple[np.ndarray, str]]:
    from glasses.export.speech_set import make_speech_set

    folder = tmp_path_factory.mktemp("requests")
    clips = make_speech_set(folder, count=8, seed=3, progress=lambda _: None, hibari=False)
    return [(load_audio(folder / c["file"]), c["text"]) for c in clips]


def test_short_window_with_cached_silence_stops_where_the_speech_stops(store, asr, requests,
                                                                       monkeypatch):
    """Encoding only the question plus cached silence, the decoder ends with the speech.
    Without the cached silence it does not know the speech is over and repeats itself,
    until the loop guard cuts the repetition."""
    from glasses.models import asr as asr_module

    bare = WhisperOnnx(store, BoardProfile.laptop(), AsrOptions("tiny.en", span_s=0))
    said = sum(len(normalise_words(text)) for _, text in requests)
    guarded = sum(len(normalise_words(bare.transcribe(audio).text)) for audio, _ in requests)
    for audio, text in requests:
        assert len(normalise_words(asr.transcribe(audio).text)) <= len(normalise_words(text)) + 2
    monkeypatch.setattr(asr_module, "LOOP_REPEATS", 10**6)  # no loop is ever found
    unguarded = sum(len(normalise_words(bare.transcribe(audio).text)) for audio, _ in requests)
    assert unguarded > 1.5 * said
    assert guarded <= 1.2 * said


@pytest.mark.parametrize("suffix", ["", ".int8"])
def test_the_stored_silence_is_what_the_stored_encoder_gives(store, suffix):
    """The silence after a short question is encoded when the model is built, not at each
    start: it must be its own encoder's, as this board computes it."""
    from glasses.models.asr import encode_silence, load_silence
    from glasses.models.sessions import create_session

    encoder = create_session(store.path("whisper-tiny.en", f"encoder{suffix}.onnx"),
                             BoardProfile.laptop())
    fresh = encode_silence(encoder, 80)
    stored = load_silence(store.path("whisper-tiny.en", f"silence{suffix}.npz"), list(fresh))
    for (name, now), kept in zip(fresh.items(), stored, strict=True):
        assert now.shape == kept.shape, name
        assert np.abs(now - kept).max() < 1e-3 * np.abs(now).max(), name


def test_stored_silence_of_another_encoder_is_refused(tmp_path):
    from glasses.device.errors import StoreError
    from glasses.models.asr import load_silence

    np.savez(tmp_path / "silence.npz", cross_k_0=np.zeros(3, np.float32))
    with pytest.raises(StoreError, match="silence.npz: holds"):
        load_silence(tmp_path / "silence.npz", ["cross_k_0", "cross_v_0"])


def test_a_forced_prefix_is_kept_and_decoding_continues(asr, questions):
    whole = asr.transcribe(questions[0])
    resumed = asr.transcribe(questions[0], prefix=whole.tokens[:3])
    assert resumed.tokens == whole.tokens


def test_empty_silent_and_bad_audio(asr):
    assert asr.transcribe(np.zeros(0, np.float32)).text == ""
    assert asr.transcribe(np.zeros(2 * SAMPLE_RATE, np.float32)).text == ""
    with pytest.raises(BadInput, match="NaN"):
        asr.transcribe(np.full(1000, np.nan, np.float32))
    with pytest.raises(BadInput, match="mono"):
        asr.transcribe(np.zeros((1000, 2), np.float32))


def test_streaming_gives_growing_partials_then_the_final_at_the_endpoint(store):
    """VAD with partials -> ASR, driven directly (no threads): every transcript in order."""
    from glasses.models.vad import VadOptions
    from glasses.pipelines.asr_stage import AsrStage
    from glasses.pipelines.frames import AudioChunk, Transcript
    from glasses.pipelines.vad_stage import VadStage

    board = BoardProfile.laptop()
    vad = VadStage(store, board, VadOptions(partial_every_ms=400, early_end=True))
    asr = AsrStage(store, board, AsrOptions("tiny.en"))
    vad.open()
    asr.open()
    decodes = []
    transcribe = asr.asr.transcribe
    asr.asr.transcribe = lambda *a, **k: decodes.append(1) or transcribe(*a, **k)
    audio = load_audio(DEMO)[: int(4.5 * SAMPLE_RATE)]  # the first question
    transcripts: list[Transcript] = []
    utterances = []
    for offset in range(0, len(audio), 512):
        chunk = AudioChunk(t_ns=offset * 62_500, samples=audio[offset : offset + 512],
                           offset=offset)
        for utterance in vad.process(chunk):
            utterances.append(utterance)
            before = len(decodes)
            transcripts += asr.process(utterance)
            if utterance.final:  # decoded early, during the silence: no work left
                assert len(decodes) == before
    for utterance in vad.flush():
        transcripts += asr.process(utterance)
    early = [u for u in utterances if u.ending]  # a pause inside the speech sends one too
    assert early and (early[-1].speech_start, early[-1].speech_end) == (
        utterances[-1].speech_start, utterances[-1].speech_end)
    assert np.array_equal(early[-1].samples, utterances[-1].samples)
    partials = [t for t in transcripts if not t.final]
    finals = [t for t in transcripts if t.final]
    assert len(partials) >= 2 and len(finals) == 1 and transcripts[-1].final
    assert normalise_words(finals[0].text) == ["what", "am", "i", "looking", "at"]
    committed = asr.agreement.committed  # reset by the final
    assert committed == []
    assert normalise_words(partials[-1].text)[:2] == ["what", "am"]


def test_a_repetition_loop_is_cut_after_its_first_copy():
    from glasses.models.asr import LOOP_REPEATS, loop_cut

    prefix = [50257, 50362]
    zoom = [1, 2]
    looping = prefix + [7, 8] + zoom * LOOP_REPEATS
    assert looping[: loop_cut(looping, len(prefix))] == prefix + [7, 8] + zoom
    assert loop_cut(prefix + [5] * (LOOP_REPEATS + 1), len(prefix)) == len(prefix) + 1
    # a doubled word ("very very") and a block repeated fewer times are speech, not loops
    assert loop_cut(prefix + [9, 5, 5, 6], len(prefix)) is None
    assert loop_cut(prefix + zoom * (LOOP_REPEATS - 1), len(prefix)) is None
    assert loop_cut(zoom * LOOP_REPEATS, len(zoom) + 1) is None  # the loop began in the prefix


def test_the_int8_decoder_reads_its_embedding_from_one_int8_table(store):
    """The tied embedding is one (d, vocab) table; int8 keeps it once, as int8 only."""
    import onnx

    path = store.path("whisper-tiny.en", "decoder.int8.onnx")
    graph = onnx.load(str(path), load_external_data=False).graph
    big = [(t.name, t.data_type) for t in graph.initializer if np.prod(t.dims) >= 51864 * 384]
    assert big == [("table_quantized", onnx.TensorProto.INT8)]


@pytest.mark.parametrize("precision", ["int8", "mixed"])
def test_int8_and_mixed_transcribe_the_demo_questions_like_fp32(store, asr, questions, precision):
    other = WhisperOnnx(store, BoardProfile.laptop(), AsrOptions("tiny.en", precision=precision))
    for audio in questions:
        assert normalise_words(other.transcribe(audio).text) == \
            normalise_words(asr.transcribe(audio).text)


def test_no_partial_is_sent_once_a_silence_began(store):
    """The early utterance is what the final reuses: a partial sent in the silence would
    hold speech recognition while it waits."""
    from glasses.models.vad import VadOptions
    from glasses.pipelines.frames import AudioChunk
    from glasses.pipelines.vad_stage import VadStage

    vad = VadStage(store, BoardProfile.laptop(),
                   VadOptions(endpoint="turn", partial_every_ms=64, early_end=True))
    vad.open()
    audio = load_audio(DEMO)[: int(4.5 * SAMPLE_RATE)]  # the first question, then silence
    kinds = []
    for offset in range(0, len(audio), 512):
        chunk = AudioChunk(t_ns=offset * 62_500, samples=audio[offset : offset + 512],
                           offset=offset)
        for u in vad.process(chunk):  # the stage is paused where it sent `u`
            in_silence = vad._endpointer.silence_from is not None
            kinds.append("final" if u.final else "ending" if u.ending else
                         "partial in silence" if in_silence else "partial")
    assert kinds.count("partial") >= 5 and kinds.count("ending") >= 1
    assert kinds[-1] == "final" and "partial in silence" not in kinds
