"""Look and tell: an image and a question in, a stream of answer text out.

`Vlm` is the interface every answerer keeps (image + question -> pieces of text), so a
distilled student can replace what is inside. `Teacher` grounds its answers in facts: the
intent (`models/intent.py`) decides which models run, the classifier, the people
detectors, the text reader and the colour reader find the facts, identify / read / colour
answers are worded from them (`models/answers.py`), and general questions go to the
language model with every fact. A person in view is "a person", never who.
"""

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.device.memory import MemoryBudget
from glasses.models import answers
from glasses.models.colour import ColourReading, name_colour
from glasses.models.intent import Intent, asked_thing, intent_of, subject
from glasses.models.lm import AnswerModel
from glasses.models.ocr import TextReader
from glasses.models.people import People
from glasses.models.store import ModelStore
from glasses.models.streams import Stream
from glasses.models.vision import Classifier, Label, as_bgr

MAX_QUESTION_CHARS = 500  # a spoken question is far shorter; longer is refused
BLANK_STD = 2.0  # grey-level standard deviation below which the view is blank
GREY_SPREAD = 4  # colour channels closer than this everywhere: a black-and-white picture
CHECK_SIDE = 256  # blank and grey checks run on a copy this size at most
MIN_FACT_CHARS = 2  # text read with fewer letters and digits is no fact for general answers

SYSTEM = ("You answer for smart glasses from facts about the camera view. Reply in one short "
          "sentence. Use only the facts. If they do not answer the question, reply: "
          "I can't tell.")
EXAMPLES = (  # shown before every general question; their KV cache is computed once.
    # The answers say the fact first: a 135M model copies facts well and reasons poorly.
    ("Facts: an espresso, dark brown, no text.\nQuestion: Can I drink this?",
     "It looks like an espresso, so yes."),
    ("Facts: a tabby cat (a cat, an animal), grey, no text.\nQuestion: Is it friendly?",
     "I can't tell."),
    ('Facts: text "NO ENTRY", a street sign, red.\nQuestion: Can I go in?',
     "The sign says NO ENTRY, so no."),
    ('Facts: text "Main St", a street sign, green.\nQuestion: Which street is this?',
     "The sign says Main St."),
    ("Facts: a moped, red, no text.\nQuestion: How much does it cost?", "I can't tell."),
    ("Facts: a pizza, orange, no text.\nQuestion: Can I eat this?",
     "It looks like a pizza, so yes."),
    ("Facts: a moped, red, no text.\nQuestion: Where can I buy one?", "I can't tell."),
)
CANT_TELL = re.compile(r"^\s*i (can ?not|can't|cannot) tell", re.IGNORECASE)


class AnswerStream(Stream[str]):
    """One answer's pieces (iterate once); filled as it goes: `intent`, `stages_ms`
    (stage -> ms) and `facts` (what the models found; empty for the student)."""

    def __init__(self, pieces: Callable[["AnswerStream"], Iterator[str]]):
        self.intent: Intent | None = None
        self.stages_ms: dict[str, float] = {}
        self.facts = Facts()
        super().__init__(pieces)


class Vlm(Protocol):
    """What answers a look-and-tell question."""

    name: str

    def stream(self, image: np.ndarray, question: str, intent: Intent | None = None
               ) -> AnswerStream:
        """Pieces of the answer as they are ready; joined they are the answer. `intent`:
        the skill already chosen (else routed from the question)."""
        ...

    def warm_up(self) -> None:
        """Run once on a made-up picture, so that the first real turn is not the slowest."""
        ...

    def cancel(self) -> None:
        """End an answer running in another thread."""
        ...


@dataclass(frozen=True)
class VlmOptions:
    # precision of each model: fp32 or int8
    vision_precision: str = "fp32"
    lm_precision: str = "fp32"

    # which answerer: "teacher" (the models that find facts, and SmolLM2) or "student"
    # (the distilled image + text model, `models/student.py`)
    model: str = "teacher"

    # answers
    top_k: int = 5  # classifier labels kept as facts
    max_tokens: int = 24  # language-model tokens for a general answer


@dataclass(frozen=True)
class Facts:
    """What the models found in one image; None where a model did not run."""

    blank: bool = False
    grey: bool = False
    labels: tuple[Label, ...] | None = None
    kinds: dict[str, float] | None = None  # summed probability of each kind
    text: tuple[str, ...] | None = None  # lines read, in reading order
    colour: ColourReading | None = None
    features: np.ndarray | None = None  # the classifier's (1280,) L2-normalised, same run
    people: int | None = None  # people near enough to be what the view shows

    def seen(self) -> str:
        if self.people:
            return answers.person(self.people, self.labels or ())
        return answers.identify(self.labels or (), self.kinds or {})

    def sure(self) -> bool:
        """Whether the classifier is sure of the top label or of its kind."""
        if not self.labels:
            return False
        kind = answers.kind_of(self.labels[0].index)
        return self.labels[0].confidence >= answers.SURE or (
            kind is not None and (self.kinds or {}).get(kind, 0.0) >= answers.SURE)

    def known(self) -> set[str]:
        """Lowercase words the facts hold: labels likely enough, kinds, colour, text."""
        words: set[str] = {"person", "people", "someone"} if self.people else set()
        for label in self.labels or ():
            if label.confidence >= answers.MAYBE:
                name = answers.noun(label.name).lower().split(" ", 1)[1]  # no article
                words |= {name, *name.split()}
                if kind := answers.kind_of(label.index):
                    words.add(kind)
                    words |= {"pet"} if kind in ("cat", "dog") else set()
                if answers.is_animal(label.index):
                    words.add("animal")
        if self.colour is not None:
            words |= set(self.colour.name.split())
        for line in self.text or ():
            words |= set(line.lower().split())
        return words

    def for_lm(self) -> str:
        """One line for the language model: "an espresso, dark brown, no text", or with text
        first, as it is what a sign is for: 'text "EXIT", a street sign, green'."""
        parts = [f'text "{" ".join(self.text)}"'] if self.text else []
        if self.people:
            parts.append(answers.person(self.people, ()).removeprefix("It looks like ")
                         .rstrip("."))
        if self.labels:
            top, kind = self.labels[0], answers.kind_of(self.labels[0].index)
            if top.confidence < answers.MAYBE:
                parts.append("nothing recognised")
            else:
                what = [f"a {kind}"] if kind else []
                what += ["an animal"] if answers.is_animal(top.index) else []
                parts.append(answers.noun(top.name) + (f" ({', '.join(what)})" if what else ""))
        if self.colour is not None:
            parts.append(self.colour.name)
        if self.text is not None and not self.text:
            parts.append("no text")
        return ", ".join(parts)


def fact_lines(lines: Sequence[str]) -> tuple[str, ...]:
    """The lines read that are facts for a general answer: a stray letter on a photo is
    not one."""
    return tuple(t for t in lines if len(re.sub(r"[\W_]", "", t)) >= MIN_FACT_CHARS)


def check_question(question: str) -> str:
    question = " ".join(str(question).split())
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("the question is not valid text (it holds bytes that are not "
                       "UTF-8)") from None
    if not question:
        raise BadInput("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise BadInput(f"the question is {len(question)} characters long; "
                       f"at most {MAX_QUESTION_CHARS} are accepted")
    return question


def view_checks(image: np.ndarray) -> tuple[bool, bool]:
    """(blank, grey) of a BGR image, decided on a small copy."""
    h, w = image.shape[:2]
    step = max(1, max(h, w) // CHECK_SIDE)
    small = image[::step, ::step].astype(np.int16)
    grey = bool(np.abs(small - small[:, :, :1]).max() < GREY_SPREAD)
    blank = float(cv2.cvtColor(small.astype(np.uint8), cv2.COLOR_BGR2GRAY).std()) < BLANK_STD
    return blank, grey


def guarded(image: np.ndarray, intent: Intent) -> str | None:
    """The answer the pixels alone decide, for any answerer: a blank view, or a colour
    asked of a black-and-white picture; None when a model must look."""
    blank, grey = view_checks(image)
    if blank:
        return answers.NO_TEXT if intent is Intent.READ else answers.BLANK
    if grey and intent is Intent.COLOUR:
        return answers.NO_COLOUR
    return None


class Teacher:
    """Facts from the vision models, answers worded from them or by the language model."""

    name = "teacher"

    def __init__(self, store: ModelStore, board: BoardProfile, options: VlmOptions = VlmOptions()):
        self.options = options
        self.classifier = Classifier(store, board, options.vision_precision)
        self.reader = TextReader(store, board)
        self.people = People(store, board)
        # the language model words general answers only: under a board's memory budget it
        # is loaded when a question needs it and let go after, while over budget
        AnswerModel.check(store, options.lm_precision)
        self.budget = MemoryBudget(board.memory_budget_mb)
        self.lm = self.budget.on_demand(
            "smollm2-135m", lambda: AnswerModel(store, board, options.lm_precision))

    def warm_up(self) -> None:
        """Run every model once (first runs are slow) and, unless the board has a memory
        budget, load the language model and cache its prompt's prefix."""
        image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
        questions = ["What is this?", "Read it.", "What colour is it?"]
        if self.budget.limit_mb is None:
            questions.append("Is it far?")
        for question in questions:
            for _ in self.stream(image, question):
                pass

    def cancel(self) -> None:
        if (lm := self.lm.model) is not None:
            lm.cancel()

    def look(self, image: np.ndarray, intent: Intent, stages_ms: dict[str, float] | None = None
             ) -> Facts:
        """Run the models the intent needs on `image` (any uint8 layout `as_bgr` takes);
        their times go into `stages_ms`, if given."""
        stages_ms = {} if stages_ms is None else stages_ms
        _timed = lambda stage: timed(stages_ms, stage)  # noqa: E731
        image = as_bgr(image)
        blank, grey = view_checks(image)
        if blank:
            return Facts(blank=True, grey=grey)
        labels = kinds = text = colour = features = people = None
        if intent in (Intent.IDENTIFY, Intent.GENERAL):
            with _timed("people"):
                people = self.people.count(image)
            with _timed("vision"):
                probs, features = self.classifier.look(image)
                labels = tuple(self.classifier.top(probs, self.options.top_k))
                kinds = answers.kind_probabilities(probs)
        if intent in (Intent.READ, Intent.GENERAL):
            with _timed("ocr"):
                text = tuple(line.text for line in self.reader.read(image).lines)
            if intent is Intent.GENERAL:
                text = fact_lines(text)
        if intent in (Intent.COLOUR, Intent.GENERAL) and not grey:
            with _timed("colour"):
                colour = name_colour(image)
        return Facts(False, grey, labels, kinds, text, colour, features, people)

    def stream(self, image: np.ndarray, question: str, intent: Intent | None = None
               ) -> AnswerStream:
        return AnswerStream(lambda out: self._answer(out, image, question, intent))

    def _answer(self, out: AnswerStream, image: np.ndarray, question: str,
                intent: Intent | None) -> Iterator[str]:
        with timed(out.stages_ms, "intent"):
            question = check_question(question)
            intent = out.intent = intent or intent_of(question)
        facts = out.facts = self.look(image, intent, out.stages_ms)
        if facts.blank:
            yield from words(answers.NO_TEXT if intent is Intent.READ else answers.BLANK)
        elif intent is Intent.IDENTIFY:
            yield from words(facts.seen())
        elif intent is Intent.READ:
            yield from words(answers.read(facts.text or ()))
        elif intent is Intent.COLOUR:
            yield from words(answers.colour(facts.colour, subject(question)))
        else:
            yield from self._general(out, facts, question)

    def _general(self, out: AnswerStream, facts: Facts, question: str) -> Iterator[str]:
        """ "Is this a dog?" from the facts; other questions by the language model, with
        what is known said after its "I can't tell"."""
        thing = asked_thing(question)
        if thing and facts.labels:
            said = answers.verify(thing, facts.known(), facts.seen(), facts.sure())
            if said:
                yield from words(said)
                return
        user = f"Facts: {facts.for_lm()}.\nQuestion: {question}"
        said = []
        loads = self.lm.loads
        try:
            with self.lm.use() as model:
                if self.lm.loads > loads:
                    out.stages_ms["lm_load"] = self.lm.last_load_ms
                lm = model.stream(SYSTEM, user, self.options.max_tokens, EXAMPLES)
                for piece in lm:
                    said.append(piece)
                    yield piece
                out.stages_ms["lm"] = lm.timings_ms.get("total_ms", 0.0)
        finally:
            self.budget.settle()
        if CANT_TELL.match("".join(said)):
            seen = facts.seen()
            known = [seen] if seen != answers.CANT_TELL else []
            if facts.text:
                known.append(answers.read(facts.text))
            for sentence in known:
                yield from words(" " + sentence)


@contextmanager
def timed(stages_ms: dict[str, float], stage: str):
    """Time the block into `stages_ms[stage]`, ms."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        stages_ms[stage] = (time.perf_counter() - t0) * 1e3


def words(text: str) -> Iterator[str]:
    """A worded answer streamed as the language model would: word by word, spaces leading."""
    for i, word in enumerate(text.split(" ")):
        if word:
            yield word if i == 0 else " " + word
