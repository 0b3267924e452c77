"""The distilled student: one image + text -> text model, on onnxruntime alone.

Two graphs, built by `glasses distill` (`export/distill.py`, `export/student.py`):
- `encoder.onnx`: image (1, 3, 224, 224), normalised as for the classifier, and facts
  (1, 5): what the teacher's own readers find (`image_facts`) -> visual
  (1, m, d_model) and labels (1, 2) (the named classes' ids): the names of the image's
  two likeliest ImageNet classes (by the teacher's classifier, EfficientNet-Lite0) and
  the colour reader's colour name, as the language model's own token embeddings, then
  tokens projected from measurements: its confidences, each kind's probability, the
  people count, coarse colour grids and the colour reader's object colour
  (`export/student.py`);
- `lm.onnx` / `lm.int8.onnx`: some of SmolLM2's layers with low-rank adapters merged,
  and a head over the words answers need, with a gate that copies the labels' names:
  visual (1, m, d), tokens (1, n), labels, past_k, past_v -> logits of the last
  position, the grown cache. The visual embeddings go before the tokens; decoding steps
  pass m = 0 and the same labels.

The prompt: "<|im_start|>user\\n" (its cache computed once), the visual tokens, then
"\\n{question}<|im_end|>\\n<|im_start|>assistant\\n"; for a general question, the text OCR
reads, as the teacher reads it, goes before the question ('Text: "NO ENTRY"\\n'), and the
answer says it by one token (`TEXT_SLOT`) that the text replaces, so any text is copied
whole. Read questions are answered by OCR, and the checks that need no model (a blank
view, a black-and-white picture) answer as the teacher does.
"""

import json
import time
from collections.abc import Iterator

import numpy as np
import onnxruntime as ort

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput, StoreError
from glasses.models import answers
from glasses.models.bpe import ByteBPE
from glasses.models.colour import COLOUR_NAMES, name_colour
from glasses.models.decoding import greedy
from glasses.models.intent import Intent, intent_of
from glasses.models.ocr import TextReader
from glasses.models.people import People
from glasses.models.sessions import create_session
from glasses.models.store import ModelStore
from glasses.models.vision import as_bgr, preprocess
from glasses.models.vlm import (
    AnswerStream,
    VlmOptions,
    check_question,
    fact_lines,
    guarded,
    timed,
    words,
)

STORE_NAME = "look-student"
ENCODER_FILE = "encoder.onnx"
LM_FILES = {"fp32": "lm.onnx", "int8": "lm.int8.onnx"}
CONFIG_FILE = "student.json"  # dimensions, visual tokens, tokenizer, chat pieces


TEXT_SLOT = "<jupyter_text>"  # an answer token that stands for the text read (`answer_ids`)


def prompt_ids(bpe: ByteBPE, chat: dict, question: str, text: str = ""
               ) -> tuple[list[int], list[int]]:
    """(ids before the visual tokens, ids after them) for `question`, and the text read
    for it (`read_text`), if any."""
    before = [chat["im_start_id"], *bpe.encode("user\n")]
    read = f'Text: "{text}"\n' if text else ""
    after = [*bpe.encode("\n" + read + question), chat["im_end_id"], *bpe.encode("\n"),
             chat["im_start_id"], *bpe.encode("assistant\n")]
    return before, after


def answer_ids(bpe: ByteBPE, answer: str, text: str, slot: int) -> list[int]:
    """`answer`'s ids with the text read, where it says it, as the one `slot` token: the
    student copies any text so, whatever its words."""
    if not text or text not in answer:
        return bpe.encode(answer)
    start = answer.index(text)
    head, tail = answer[:start], answer[start + len(text) :]
    return [*bpe.encode(head), slot, *bpe.encode(tail)]


UNREAD_COLOUR = (128, 128, 128), "grey"  # what `image_facts` gives where it reads no colour


def image_facts(people: People, image: np.ndarray, intent: Intent | None = None
                ) -> np.ndarray:
    """(1, 5) float32: how many people the teacher's detector counts, the RGB (0-1) of the
    object the colour reader finds at the centre and its name (an index in
    `COLOUR_NAMES`): what the teacher's answers draw on beside the classifier, measured
    as the teacher measures it. Given an intent, only what the teacher reads for it: no
    people for a colour question, no colour to identify (0 and `UNREAD_COLOUR`; training
    gives those answers the other measurement of a random image, so they ignore it)."""
    count = people.count(image) if intent is not Intent.COLOUR else 0
    if intent is Intent.IDENTIFY:
        rgb, name = UNREAD_COLOUR
    else:
        reading = name_colour(image)
        rgb, name = reading.rgb, reading.name
    return np.array([[count, *(c / 255 for c in rgb), COLOUR_NAMES.index(name)]], np.float32)


def _older(file: str) -> StoreError:
    return StoreError(f"{STORE_NAME}/{file}: an older student's; rebuild it: "
                      f"glasses models prepare {STORE_NAME}")


class Student:
    """Answers from the distilled student; reading goes to OCR."""

    name = "student"

    def __init__(self, store: ModelStore, board: BoardProfile, options: VlmOptions | None = None):
        options = options or VlmOptions(model="student")
        if options.lm_precision not in LM_FILES:
            raise BadInput(f"unknown precision {options.lm_precision!r}; "
                           f"use {', '.join(LM_FILES)}")
        self.options = options
        self.config = json.loads(store.path(STORE_NAME, CONFIG_FILE).read_text())
        if "image" not in self.config:  # a student distilled before it saw with Lite0
            raise _older(CONFIG_FILE)
        tok = self.config["tokenizer"]
        self.bpe = ByteBPE(tok["tokens"], tok["merges"], tok["special"])
        self.chat = self.config["chat"]
        self.image = {**self.config["image"], "mean": np.array(self.config["image"]["mean"],
                                                               np.float32),
                      "std": np.array(self.config["image"]["std"], np.float32)}
        self.stop_ids = frozenset(self.chat["stop_ids"])
        # the slot, and the special tokens no answer holds: their embeddings, the head's
        # untrained rows, are nearly one, so the student says the slot with any of them
        self.slots = frozenset(tok["special"]) - self.stop_ids | {tok["tokens"].index(TEXT_SLOT)}
        self.encoder = create_session(store.path(STORE_NAME, ENCODER_FILE), board)
        self.lm = create_session(store.path(STORE_NAME, LM_FILES[options.lm_precision]), board)
        if "labels" not in {i.name for i in self.lm.get_inputs()}:  # before the copy gate
            raise _older(LM_FILES[options.lm_precision])
        self.reader = TextReader(store, board)
        self.people = People(store, board)
        d = self.config["dims"]
        self._empty = np.zeros((d["n_layer"], d["n_kv_head"], 0, d["head_dim"]), np.float32)
        self._no_visual = np.zeros((1, 0, d["d_model"]), np.float32)
        self._no_labels = np.zeros((1, self.config["visual"]["n_labels"]), np.int64)
        self._prefix: tuple[np.ndarray, np.ndarray] | None = None
        self._run_options = ort.RunOptions()

    def warm_up(self) -> None:
        image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
        for question in ("What is this?", "Read it.", "What colour is it?"):
            for _ in self.stream(image, question):
                pass

    def cancel(self) -> None:
        self._run_options.terminate = True

    def stream(self, image: np.ndarray, question: str, intent: Intent | None = None
               ) -> AnswerStream:
        return AnswerStream(lambda out: self._answer(out, image, question, intent))

    def _answer(self, out: AnswerStream, image: np.ndarray, question: str,
                intent: Intent | None) -> Iterator[str]:
        with timed(out.stages_ms, "intent"):
            question = check_question(question)
            intent = out.intent = intent or intent_of(question)
            image = as_bgr(image)
        if (said := guarded(image, intent)) is not None:
            yield from words(said)
        elif intent is Intent.READ:
            with timed(out.stages_ms, "ocr"):
                lines = [line.text for line in self.reader.read(image).lines]
            yield from words(answers.read(lines))
        else:
            yield from self._generate(out, image, question)

    def visual(self, image: np.ndarray, intent: Intent | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(the visual embeddings (1, m, d_model), the classes they name (1, n_labels)) of
        a BGR image, for a question of `intent` (`image_facts`)."""
        x = preprocess(image, self.image["crop"], self.image["size"], self.image["mean"],
                       self.image["std"])
        visual, labels = self.encoder.run(
            None, {"image": x, "facts": image_facts(self.people, image, intent)})
        return visual, labels

    def _generate(self, out: AnswerStream, image: np.ndarray, question: str) -> Iterator[str]:
        self._run_options.terminate = False
        with timed(out.stages_ms, "vision"):
            visual, labels = self.visual(image, out.intent)
        text = ""
        if out.intent is Intent.GENERAL:  # what a sign says, as the teacher reads it
            with timed(out.stages_ms, "ocr"):
                text = answers.read_text(fact_lines(
                    [line.text for line in self.reader.read(image).lines]))
        t0 = time.perf_counter()
        before, after = prompt_ids(self.bpe, self.chat, question, text)
        if self._prefix is None:
            _, *self._prefix = self.lm.run(None, self._feed(
                self._no_visual, before, self._no_labels, self._empty, self._empty))
        feed = self._feed(visual, after, labels, *self._prefix)
        decoder, timings = self.bpe.stream_decoder(), {}
        for token in greedy(self.lm, feed, ("past_k", "past_v"), self.options.max_tokens,
                            self.stop_ids, self._run_options,
                            after_first={"visual": self._no_visual}, timings=timings):
            if token in self.slots:  # the text read, copied whole
                if piece := decoder.flush() + text:
                    yield piece
            elif piece := decoder.push(token):
                yield piece
        if tail := decoder.flush():
            yield tail
        out.stages_ms["first_token"] = timings.get("first_token_ms", 0.0)
        out.stages_ms["lm"] = (time.perf_counter() - t0) * 1e3

    @staticmethod
    def _feed(visual: np.ndarray, ids: list[int], labels: np.ndarray, past_k: np.ndarray,
              past_v: np.ndarray) -> dict:
        return {"visual": visual, "tokens": np.array([ids], np.int64), "labels": labels,
                "past_k": past_k, "past_v": past_v}
