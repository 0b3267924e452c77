"""Sentence embeddings (all-MiniLM-L6-v2, ONNX fp32 and int8) and their WordPiece tokenizer."""

import os
import subprocess
import sys

import numpy as np
import pytest

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.models.store import ModelStore
from glasses.models.text_embedding import (
    DIM,
    MAX_TOKENS,
    MODEL,
    VOCAB_FILE,
    TextEmbedder,
    WordPieceTokenizer,
    basic_words,
)

# Python's str.lower() (the legacy tokenizer) writes a word-final capital sigma as "ς"; the
# Rust tokenizer, which transformers uses and we follow, writes "σ" wherever it stands
GREEK = "ΟΔΟΣ οδός Σίσυφος"
LONG = " ".join(f"On day {i} the wearer saw a heron by the weir, then bought bread." for i in
                range(30))
TOKENIZER_TEXTS = (
    "a coffee cup", "Where did I leave my keys?", "", "?", "   ", "Hello, World!!!",
    "Café crème, s'il vous plaît.", "Über den Wolken — naïve façade, résumé, coöperate.",
    "I parked on level 3, bay 42; it cost £4.50 (or €5,20).", "12,500 steps = 3.5km @ 6:45am",
    "e-mail someone@example.com or visit https://example.org/a?b=c&d=e#top",
    "don't won't it's O'Brien's rock'n'roll", "ALL CAPS SHOUTING", "tab\tnew\nline\r\nend",
    "non\u00a0breaking\u2028separator\u3000ideographic space", "zero\u200bwidth\x00null\x07bell",
    "东京 Tokyo trip 北京", "emoji 🙂 and ☕ coffee", GREEK, "Ångström İstanbul ß",
    "supercalifragilisticexpialidocious antidisestablishmentarianism", "x" * 150, "a" * 99,
    "#hashtag $100 100% ^caret^ `tick` ~tilde~ {brace} [bracket] |pipe| \\slash/",
    LONG, LONG + " and much more afterwards",
)

DESCRIPTIONS = (
    "a cup of espresso on the kitchen table",
    "my car keys on the hallway shelf",
    "a red double-decker bus at the stop",
    "a tabby cat asleep on the sofa",
    "the green emergency exit sign above the door",
    "a bicycle chained to the railings outside the library",
    "a bottle of sunscreen in the beach bag",
    "the wifi password written on a note on the fridge",
    "a plate of spaghetti with tomato sauce",
    "my passport in the top drawer of the desk",
    "a bunch of yellow tulips in a vase",
    "the parking ticket for level 3, bay 42",
    "an umbrella leaning by the front door",
    "a laptop charger plugged in under the desk",
    "a sign saying the pharmacy closes at 6 pm",
    "the dentist appointment card for Tuesday",
    "a pair of running shoes by the washing machine",
    "a birthday cake with candles",
    "the train timetable at platform two",
    "a potted basil plant on the windowsill",
)
QUERIES = (  # (paraphrased question, index of the description it is about)
    ("the coffee I had this morning", 0),
    ("where did I put the keys to my car?", 1),
    ("which bus went past?", 2),
    ("was there a kitty napping on the couch?", 3),
    ("where was the way out of the building?", 4),
    ("where did I lock up my bike?", 5),
    ("where's the sun cream?", 6),
    ("what was the code for the wireless internet?", 7),
    ("the pasta I ate for dinner", 8),
    ("where are my travel documents?", 9),
    ("the flowers on the table", 10),
    ("which spot did I leave the car in?", 11),
    ("where did I leave the thing that keeps the rain off?", 12),
    ("where is the power cable for my computer?", 13),
    ("when does the chemist shut?", 14),
    ("when is my appointment with the dentist?", 15),
    ("where are my trainers?", 16),
    ("the cake at the party", 17),
    ("when does the next train leave?", 18),
    ("the herb growing by the window", 19),
)


@pytest.fixture(scope="module")
def embedders(store: ModelStore) -> dict[str, TextEmbedder]:
    board = BoardProfile.laptop()
    return {p: TextEmbedder(store, board, p) for p in ("fp32", "int8")}


# -- the tokenizer, on its own ----------------------------------------------------------

def test_basic_words_lowercase_strip_accents_and_split_punctuation():
    assert basic_words("Héllo, WORLD! It's 3.5km") == [
        "hello", ",", "world", "!", "it", "'", "s", "3", ".", "5km"]
    assert basic_words("东京tokyo") == ["东", "京", "tokyo"]
    assert basic_words("a\x00b\tc\u00a0d") == ["ab", "c", "d"]
    assert basic_words("Café", lowercase=False) == ["Café"]


def test_wordpiece_is_greedy_longest_match_with_unk_and_truncation():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "##a", "aff", ","]
    tok = WordPieceTokenizer(vocab, max_tokens=6)
    assert tok.pieces("unaffable") == [4, 5, 6]
    assert tok.pieces("unaffablex") == [1]  # a part matches nothing: the whole word is [UNK]
    assert tok.encode("Unaffable, aff") == [2, 4, 5, 6, 9, 3]  # 6 ids: "aff" is cut off
    ids, mask = tok.pad([tok.encode("aff"), tok.encode("")])
    assert ids.tolist() == [[2, 8, 3], [2, 3, 0]] and mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert ids.dtype == mask.dtype == np.int64


@pytest.mark.parametrize("kind", ["BertTokenizer", "BertTokenizerLegacy"])
def test_ids_equal_transformers_bert_tokenizer(embedders, store, kind):
    """transformers' tokenizer (Rust `tokenizers` backed) and its pure-Python legacy one."""
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, kind):
        pytest.skip(f"this transformers has no {kind}")
    folder = store.path(MODEL, VOCAB_FILE).parent
    reference = getattr(transformers, kind).from_pretrained(str(folder), do_lower_case=True)
    ours = embedders["fp32"].tokenizer
    for text in TOKENIZER_TEXTS:
        if kind == "BertTokenizerLegacy" and text == GREEK:
            continue
        expected = reference(text, truncation=True, max_length=MAX_TOKENS)["input_ids"]
        assert ours.encode(text) == expected, text
    assert len(ours.encode(LONG)) == MAX_TOKENS


# -- embeddings from the store ------------------------------------------------------------

@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_shape_norm_and_edge_inputs(embedders, precision):
    e = embedders[precision]
    out = e.embed(["a coffee cup", "", "?", LONG])
    assert out.shape == (4, DIM) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-4)
    assert e.embed([]).shape == (0, DIM)
    for bad in (["fine", 3], [None], "a single string", None):
        with pytest.raises(BadInput):
            e.embed(bad)


def test_batching_and_padding_do_not_change_embeddings(embedders):
    e = embedders["fp32"]
    texts = [*DESCRIPTIONS, *(q for q, _ in QUERIES), LONG]  # 41: two batches
    together = e.embed(texts)
    alone = np.concatenate([e.embed([t]) for t in texts])
    assert np.abs(together - alone).max() < 1e-5
    # past MAX_TOKENS nothing more is read
    assert np.abs(e.embed([LONG])[0] - e.embed([LONG + " and much more"])[0]).max() < 1e-6


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_cup_is_closer_to_espresso_than_to_a_bus(embedders, precision):
    cup, espresso, bus = embedders[precision].embed(["a coffee cup", "a mug of espresso",
                                                     "a red bus"])
    assert cup @ espresso > cup @ bus + 0.1, (cup @ espresso, cup @ bus)


def test_int8_agrees_with_fp32(embedders):
    texts = [*DESCRIPTIONS, *(q for q, _ in QUERIES), *TOKENIZER_TEXTS]
    fp32, int8 = (embedders[p].embed(texts) for p in ("fp32", "int8"))
    cosine = (fp32 * int8).sum(1)
    assert cosine.min() >= 0.99, texts[int(cosine.argmin())]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_paraphrased_queries_find_their_description_first(embedders, precision):
    e = embedders[precision]
    index = e.embed(list(DESCRIPTIONS))
    scores = e.embed([q for q, _ in QUERIES]) @ index.T
    missed = [(q, DESCRIPTIONS[int(s.argmax())]) for (q, want), s in zip(QUERIES, scores,
                                                                          strict=True)
              if s.argmax() != want]
    assert not missed, missed


def test_run_time_needs_no_torch_or_tokenizers(store):
    code = ("import sys\n"
            "from glasses.device.boards import BoardProfile\n"
            "from glasses.models.store import ModelStore\n"
            "from glasses.models.text_embedding import TextEmbedder\n"
            "for p in ('fp32', 'int8'):\n"
            "    TextEmbedder(ModelStore(), BoardProfile.laptop(), p).embed(['a cup'])\n"
            "bad = [m for m in ('torch', 'transformers', 'tokenizers', 'optimum')"
            " if m in sys.modules]\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "GLASSES_HOME": str(store.home)})
    assert result.returncode == 0, result.stderr
