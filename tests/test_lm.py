"""The answer model (SmolLM2-135M-Instruct on onnxruntime) and its byte-level BPE."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from glasses.device.boards import BoardProfile
from glasses.models.bpe import ByteBPE
from glasses.models.lm import STORE_NAME, AnswerModel
from glasses.models.store import ModelStore

SYSTEM = "You are a helpful assistant on smart glasses. Answer briefly."


@pytest.fixture(scope="module")
def lm_store(store) -> ModelStore:
    """The real store, prepared with `smollm2-135m` (by the session fixture)."""
    return store


@pytest.fixture(scope="module")
def config(lm_store) -> dict:
    return json.loads(lm_store.path(STORE_NAME, "lm.json").read_text())


@pytest.fixture(scope="module")
def bpe(config) -> ByteBPE:
    t = config["tokenizer"]
    return ByteBPE(t["tokens"], t["merges"], t["special"])


@pytest.fixture(scope="module")
def lm(lm_store) -> AnswerModel:
    return AnswerModel(lm_store, BoardProfile.laptop())


def test_bpe_matches_reference_ids(config, bpe):
    """Ids recorded at build time (transformers' GGUF tokenizer where it was installed)."""
    checks = config["tokenizer_checks"]
    assert len(checks) >= 5
    for check in checks:
        assert bpe.encode(check["text"]) == check["ids"], check["text"]


def test_bpe_known_ids_and_round_trip(bpe):
    # from transformers' tokenizer over the same GGUF
    assert bpe.encode("Hello world") == [19556, 905]
    assert bpe.encode("system\n") == [9690, 198]
    assert bpe.encode(" 12345") == [216, 33, 34, 35, 36, 37]
    for text in ("Plain ASCII, with punctuation: (yes) -- no?!", "tabs\tand\n\nlines  ",
                 "café naïve – “quotes” 😀", "snake_case_name = 42_000", ""):
        assert bpe.decode(bpe.encode(text)) == text


def test_stream_decoder_joins_split_utf8(bpe):
    ids = bpe.encode("😀 ok")
    decoder = bpe.stream_decoder()
    assert "".join(decoder.push(i) for i in ids) + decoder.flush() == "😀 ok"


def test_prompt_follows_chat_template(lm, config):
    ids, prefix_len = lm.prompt_ids("Be brief.", "Hi")
    start, end = config["chat"]["im_start_id"], config["chat"]["im_end_id"]
    assert ids[0] == start and ids[-4:] == [start, *lm.bpe.encode("assistant\n")]
    assert ids.count(end) == 2
    text = lm.bpe.decode(ids)  # special tokens decode to nothing
    assert text == "system\nBe brief.\nuser\nHi\nassistant\n"
    assert lm.bpe.decode(ids[:prefix_len]) == "system\nBe brief.\n"


def test_cached_prefix_gives_the_same_tokens(lm):
    examples = [("Facts: seen: a moped.\nQuestion: What is it?", "A moped.")]
    ids, prefix_len = lm.prompt_ids(SYSTEM, "Facts: seen: a cat.\nQuestion: What is it?",
                                    examples)
    assert lm.bpe.decode(ids[:prefix_len]).endswith("A moped.\n")
    fresh = lm.generate_ids(ids, 8)  # the whole prompt prefilled
    stream = lm.tokens(ids, 8, prefix_len)  # computes the prefix's cache
    first = list(stream)
    assert stream.timings_ms["cached_tokens"] == prefix_len
    again = list(lm.tokens(ids, 8, prefix_len))  # reuses it
    assert fresh == first == again and fresh


def test_answers_capital_of_france(lm):
    stream = lm.stream(SYSTEM, "What is the capital of France? Answer in one word.")
    pieces = list(stream)
    assert len(pieces) >= 1
    assert "Paris" in "".join(pieces)
    t = stream.timings_ms
    assert t["prefill_ms"] > 0 and t["first_token_ms"] >= t["prefill_ms"]
    assert t["new_tokens"] >= len(pieces)  # a piece needs at least one token


def test_long_question_is_truncated(lm):
    question = ("Tell me about the weather and the city around me. " * 40)[:2000]
    assert len(question) == 2000
    stream = lm.stream(SYSTEM, question, max_tokens=4)
    assert isinstance("".join(stream), str)
    assert stream.timings_ms["prompt_tokens"] <= lm.max_user_tokens + 64


def test_max_tokens_bounds_the_answer(lm):
    stream = lm.stream(SYSTEM, "Write a long story about a dragon.", max_tokens=5)
    list(stream)
    assert stream.timings_ms["new_tokens"] <= 5


@pytest.mark.slow
def test_int8_loads_and_answers(lm_store):
    lm = AnswerModel(lm_store, BoardProfile.laptop(), precision="int8")
    assert isinstance(lm.answer(SYSTEM, "Hi", max_tokens=4), str)


def test_run_time_imports_no_torch(lm_store):
    code = (
        "import sys\n"
        "from glasses.device.boards import BoardProfile\n"
        "from glasses.models.lm import AnswerModel\n"
        "from glasses.models.store import ModelStore\n"
        "lm = AnswerModel(ModelStore(), BoardProfile.laptop())\n"
        "print(''.join(lm.stream('Be brief.', 'Say hi.', max_tokens=3)))\n"
        "bad = [m for m in ('torch', 'transformers', 'tokenizers', 'gguf') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
