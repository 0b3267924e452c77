"""The distillation recipe end to end on a tiny, randomly initialised student; its data."""

import json
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the recipe is build-time code

from glasses.device.boards import BoardProfile  # noqa: E402
from glasses.device.camera import read_image  # noqa: E402
from glasses.device.errors import StoreError  # noqa: E402
from glasses.evaluation.look import evaluate_look, read_look_set  # noqa: E402
from glasses.export.distill import Counterfactuals, StudentParts, TrainOptions, train  # noqa: E402
from glasses.export.distill_answers import TeacherSpec  # noqa: E402
from glasses.export.distill_build import build_student, claim_work  # noqa: E402
from glasses.export.distill_data import (  # noqa: E402
    PHOTOS,
    SIGNS,
    key_words,
    read_answers,
    target,
)
from glasses.export.lm_onnx import Llama, LlamaDims  # noqa: E402
from glasses.export.mobilenet_v2 import MOBILENET_V2, mobilenet_v2, with_features  # noqa: E402
from glasses.export.student import StudentDims  # noqa: E402
from glasses.models import answers, ocr, people, student, vision  # noqa: E402
from glasses.models import lm as lm_model  # noqa: E402
from glasses.models.colour import COLOUR_NAMES  # noqa: E402
from glasses.models.deployment import open_vlm, runtime_files  # noqa: E402
from glasses.models.intent import Intent, intent_of  # noqa: E402
from glasses.models.people import People  # noqa: E402
from glasses.models.store import ModelStore, sha256_file  # noqa: E402
from glasses.models.vlm import VlmOptions  # noqa: E402

TINY = StudentDims(hidden=32, n_visual=2, measure_hidden=16, lora_rank=2, layers=2,
                   common_tokens=512)
FAST = TrainOptions(steps=10, batch=4, lr=1e-2, lora_lr=1e-2, warmup=1, checkpoint_every=5)


def tiny_parts(store: ModelStore) -> StudentParts:
    """A randomly initialised MobileNetV2 and a 2-layer, 32-wide Llama on the real
    tokenizer: the recipe's whole path at a size a test can afford."""
    torch.manual_seed(0)
    config = json.loads(store.path(lm_model.STORE_NAME, lm_model.CONFIG_FILE).read_text())
    dims = LlamaDims(n_layer=2, d_model=32, n_head=4, n_kv_head=2, d_ff=64,
                     n_vocab=config["dims"]["n_vocab"])
    lm = Llama(dims)
    torch.nn.init.normal_(lm.embed_t, std=0.5)
    config["dims"] = {**config["dims"], "n_layer": 2, "d_model": 32, "n_head": 4,
                      "n_kv_head": 2, "head_dim": 8, "d_ff": 64}
    labels = json.loads(store.path(vision.MODEL, vision.LABELS_FILE).read_text("utf-8"))
    return StudentParts(MOBILENET_V2, with_features(mobilenet_v2()).eval(), lm, config,
                        [x["name"] for x in labels], TINY,
                        partial(student.image_facts, People(store, BoardProfile.laptop())))


def distil_tiny(store: ModelStore, root: Path, ray: str | None = None
                ) -> tuple[ModelStore, Path, dict]:
    """A store in `root` holding the OCR and people models and a tiny student distilled
    from the real teacher (on `store`), its answers made in this process or on Ray."""
    home = root / "home"
    home.mkdir()
    (home / "downloads").symlink_to(store.home / "downloads")  # the photos' wheel
    target_store = ModelStore(home)
    for name in (ocr.MODEL, people.MODEL):  # what the student runs beside its own graphs
        entry = store.entry(name)
        target_store.add(name, {f.name: store.path(name, f.name) for f in entry.files},
                         entry.provenance)
    claim_work(root / "work", fresh=False)
    figures = build_student(target_store, root / "work", FAST, 0.01, TINY, print,
                            tiny_parts(store), TeacherSpec(store.home), ray)
    return target_store, root / "work", figures


@pytest.fixture(scope="module")
def tiny_student(store, tmp_path_factory) -> tuple[ModelStore, Path, dict]:
    return distil_tiny(store, tmp_path_factory.mktemp("distill"))


def test_distilling_with_a_local_ray_gives_the_same_data_and_student(store, tiny_student,
                                                                     tmp_path):
    pytest.importorskip("ray")  # the [ray] extra; make setup installs it
    _, work, figures = tiny_student
    _, ray_work, ray_figures = distil_tiny(store, tmp_path, ray="local")
    for split in ("train", "heldout"):
        for table in ("answers.tsv", "cases.tsv"):
            assert (ray_work / split / table).read_text() == (work / split / table).read_text()
    assert ray_figures["final_loss"] == figures["final_loss"]
    with np.load(work / "delta" / "delta.npz") as a, \
            np.load(ray_work / "delta" / "delta.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_a_tiny_student_is_trained_exported_checked_and_stored(tiny_student):
    target_store, work, figures = tiny_student
    assert figures["steps"] == FAST.steps
    assert figures["final_loss"] < figures["first_loss"]  # it learns the teacher's answers
    assert figures["logit_max_abs_diff"] < 1e-2 and figures["visual_max_abs_diff"] < 1e-2
    assert target_store.verify(student.STORE_NAME) == []
    provenance = target_store.entry(student.STORE_NAME).provenance
    assert provenance["teacher"] == "teacher" and provenance["training"]["steps"] == FAST.steps
    names = {f.name for f in target_store.entry(student.STORE_NAME).files}
    assert names == {student.ENCODER_FILE, *student.LM_FILES.values(), student.CONFIG_FILE}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_stored_student_answers_behind_the_vlm_interface(tiny_student, precision):
    target_store, work, _ = tiny_student
    vlm = open_vlm(target_store, BoardProfile.laptop(),
                   VlmOptions(model="student", lm_precision=precision, max_tokens=6))
    assert vlm.name == "student"
    cases = read_look_set(work / "heldout")
    summary = evaluate_look(vlm, cases, work / "heldout")
    assert summary["cases"] == len(cases) > 0
    for r in summary["results"]:
        if r["intent"] in ("identify", "colour", "general"):
            assert {"vision", "first_token", "lm"} <= set(r["stages"]), r
    image = read_image(cases[0].file)
    stream = vlm.stream(image, "What is this?")
    assert all(isinstance(p, str) for p in stream) and stream.intent.value == "identify"


def test_an_interrupted_training_resumes_where_its_checkpoint_left_it(store, tiny_student,
                                                                       tmp_path):
    _, work, _ = tiny_student
    straight = tmp_path / "straight"
    straight.mkdir()
    _, _, whole = train(tiny_parts(store), work / "train", straight, FAST, lambda m: None)

    stopped = tmp_path / "stopped"
    stopped.mkdir()

    def stop_at_step_5(message: str) -> None:
        if "step 5/" in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_parts(store), work / "train", stopped, FAST, stop_at_step_5)
    said = []
    _, _, resumed = train(tiny_parts(store), work / "train", stopped, FAST, said.append)
    assert any("resuming at step 5/10" in m for m in said)
    assert resumed["steps"] == whole["steps"] == FAST.steps
    assert resumed["final_loss"] == pytest.approx(whole["final_loss"], abs=1e-4)


def test_a_checkpoint_from_other_settings_is_refused(store, tiny_student, tmp_path):
    from glasses.device.errors import BadInput

    _, work, _ = tiny_student
    other = TrainOptions(steps=2, batch=4, checkpoint_every=1)
    train(tiny_parts(store), work / "train", tmp_path, other, lambda m: None)
    with pytest.raises(BadInput, match="other settings"):
        train(tiny_parts(store), work / "train", tmp_path, FAST, lambda m: None)


def test_the_splits_hold_the_teachers_answers_and_their_key_words(tiny_student):
    _, work, _ = tiny_student
    train_rows, held_rows = read_answers(work / "train"), read_answers(work / "heldout")
    assert train_rows and held_rows
    held_questions = {c.question for c in read_look_set(work / "heldout")}
    assert not {q for _, q, _, _ in train_rows} & held_questions  # phrasings never trained on
    assert not set(PHOTOS["train"]) & set(PHOTOS["heldout"])  # nor photos
    assert not set(SIGNS["train"]) & set(SIGNS["heldout"])  # nor signs
    for path, question, answer, text in train_rows:
        assert path.exists() and answer and ": " not in answer  # no glosses
        if intent_of(question) is not Intent.GENERAL:
            assert text == ""  # the teacher reads text for general questions alone


def test_the_teacher_answering_a_general_question_gives_the_text_it_read(store):
    import cv2

    from glasses.export.distill_answers import answer
    from glasses.export.look_set import sign_view

    teacher = TeacherSpec(store.home).make()
    sign = cv2.imencode(".jpg", sign_view("NO ENTRY", np.random.default_rng(0)))[1].tobytes()
    (said, text), (_, none) = answer(teacher, [sign, sign], ["Can I go in?", "What is this?"])
    assert text == "NO ENTRY" and "NO ENTRY" in said  # read for a general question
    assert none == ""  # and not to identify


def test_an_answer_says_the_text_read_by_one_token_and_the_prompt_gives_the_text(store):
    parts = tiny_parts(store)
    bpe, chat, slot = parts.bpe, parts.lm_config["chat"], parts.slot
    tokenizer = parts.lm_config["tokenizer"]
    assert tokenizer["tokens"][slot] == student.TEXT_SLOT and slot in tokenizer["special"]
    ids = student.answer_ids(bpe, "The sign says NO ENTRY, so no.", "NO ENTRY", slot)
    assert ids == [*bpe.encode("The sign says "), slot, *bpe.encode(", so no.")]
    assert student.answer_ids(bpe, 'It says "EXIT".', "EXIT", slot).count(slot) == 1
    plain = bpe.encode("It looks like a moped.")
    assert student.answer_ids(bpe, "It looks like a moped.", "", slot) == plain
    assert student.answer_ids(bpe, "It looks like a moped.", "EXIT", slot) == plain
    question = "Can I go in?"
    with_text = student.prompt_ids(bpe, chat, question, "NO ENTRY")[1]
    assert bpe.decode(with_text).startswith('\nText: "NO ENTRY"\nCan I go in?')
    assert bpe.decode(student.prompt_ids(bpe, chat, question)[1]).startswith("\nCan I go in?")


def test_a_split_made_by_an_older_distill_is_refused_naming_the_file(tmp_path):
    from glasses.device.errors import BadInput

    (tmp_path / "answers.tsv").write_text("a.jpg\tWhat is this?\tIt looks like a cat.\n")
    with pytest.raises(BadInput, match=r"answers.tsv: line 1 has 3 fields.*--fresh"):
        read_answers(tmp_path)


def test_targets_drop_glosses_and_key_words_leave_out_the_question_and_template():
    assert target("It looks like an espresso: a small serving of coffee.") == \
        "It looks like an espresso."
    assert target("Yes. It looks like a tabby cat, a cat: a striped cat.") == \
        "Yes. It looks like a tabby cat, a cat."
    assert key_words("The mug is dark blue.", "What colour is the mug?") == ["dark", "blue"]
    assert key_words("I can't tell what this is.", "What is this?") == ["can't", "tell"]
    assert key_words("It looks like a dog, maybe a Great Dane.", "What is it?") == \
        ["dog", "great", "dane"]


def test_counterfactuals_change_only_what_the_teachers_answer_does_not_depend_on(store):
    import random

    parts = tiny_parts(store)
    encoder, names = parts.encoder(0), parts.class_names
    missile, cat = names.index("missile"), names.index("tabby cat")
    rows = [(None, "What is this?", "Maybe a missile or a missile."),
            (None, "What colour is it?", "It's red."),
            (None, "Can I ride this?", "It looks like a missile, so no."),
            (None, "What is this?", "It looks like a tabby cat, a cat.")]
    top = torch.tensor([[missile, missile], [missile, cat], [missile, missile], [cat, missile]])
    h = torch.arange(len(rows))[:, None].float().expand(-1, encoder.n_in)
    made = Counterfactuals(encoder, names, rows, top, swap_names=1.0)
    colour, confidence = encoder.colour_columns, encoder.confidence_columns
    assert colour.stop == h.shape[1] and confidence.stop == colour.start
    renamed = 0
    for seed in range(20):
        hb, tops, changed = made.batch([0, 1, 2, 3], h, top, random.Random(seed))
        assert (hb[0, confidence] == 0).all() and (hb[1, colour] == 1).all()  # what counts
        assert (hb[2] == 2).all() and tops[2].tolist() == [missile, missile]  # general: as is
        assert tops[3].tolist() == [cat, missile] and 3 not in changed  # a kind keeps names
        assert (hb[0, colour] == hb[0, colour][0]).all()  # one other example's colours
        first, second = (answers.noun(names[c]) for c in tops[0].tolist())
        assert changed[0] == f"Maybe {first} or {second}."  # each name keeps its place
        assert all(encoder.kinds[c].sum() == 0 for c in tops[0])  # no kind is drawn
        renamed += tops[0].tolist() != [missile, missile]
        other = int(hb[1, confidence][0])  # colour: classes and confidences of one other
        assert (hb[1, confidence] == other).all() and tops[1].tolist() == top[other].tolist()
    assert renamed == 20
    others = {int(made.batch([0, 1], h, top, random.Random(s))[0][0, colour][0])
              for s in range(20)}
    assert len(others) > 1  # the colours come from random examples


def test_the_student_reads_the_colour_readers_colour_name_as_its_own_tokens(store):
    parts = tiny_parts(store)
    encoder, lm, bpe = parts.encoder(0), parts.lm, parts.bpe
    image = np.zeros((120, 160, 3), np.uint8)
    image[30:90, 40:120] = (230, 216, 173)  # BGR light blue at the centre
    facts = torch.from_numpy(parts.facts(image))
    assert COLOUR_NAMES[int(facts[0, 4])] == "light blue"
    x = torch.from_numpy(parts.eyes.prep(image))
    with torch.no_grad():
        visual, _ = encoder(x, facts)
        ids = bpe.encode(" light blue")
        start = TINY.n_labels * TINY.label_tokens
        said = visual[0, start : start + TINY.colour_tokens]
        assert torch.equal(said[: len(ids)], lm.embed(torch.tensor(ids)))
        assert not said[len(ids):].any()  # padded with zeros
        other = facts.clone()
        other[0, 4] = COLOUR_NAMES.index("dark red")
        assert not torch.equal(encoder(x, other)[0][0, start : start + TINY.colour_tokens],
                               said)


def test_a_board_running_the_student_loads_its_files_not_the_teachers():
    files = runtime_files(BoardProfile.by_name("rpi5"), vlm_model="student")
    assert files[student.STORE_NAME] == [student.ENCODER_FILE, student.LM_FILES["int8"],
                                         student.CONFIG_FILE]
    assert vision.MODEL not in files and lm_model.STORE_NAME not in files
    assert ocr.MODEL in files  # text is still read by OCR
    assert np.array_equal(sorted(runtime_files(BoardProfile.laptop())),
                          sorted([*files.keys() - {student.STORE_NAME}, vision.MODEL,
                                  lm_model.STORE_NAME]))


def test_the_delta_holds_what_training_changed_and_reassembles_the_same_student(
        store, tiny_student, tmp_path):
    from glasses.export.distill_build import assemble
    from glasses.export.student_delta import WEIGHTS_FILE, read_delta
    from glasses.export.student_recipe import RECORD_FILE, base_packages

    target_store, work, figures = tiny_student
    arrays, record = read_delta(work / "delta", base_packages())
    assert record["outputs"]["top_tokens"] and record["dims"]["layers"] == TINY.layers
    assert {k.split(".")[0] for k in arrays} == {"projector", "copy", "lora", "vocab"}  # no head
    assert np.abs(arrays["copy.weight"]).max() > 0  # the copy gate trained
    assert len(arrays["vocab"]) == figures["vocab"] < 49152  # the answer vocabulary
    before = target_store.entry(student.STORE_NAME).files
    checks = assemble(target_store, work / "delta", print, tiny_parts(store))
    assert checks["logit_max_abs_diff"] < 1e-2  # and the recorded outputs were reproduced
    assert target_store.entry(student.STORE_NAME).files == before  # the same graphs

    changed = tmp_path / "changed"
    shutil.copytree(work / "delta", changed)
    data = bytearray((changed / WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (changed / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"delta\.npz: sha256 differs"):
        assemble(target_store, changed, print, tiny_parts(store))

    other_base = tmp_path / "other-base"
    shutil.copytree(work / "delta", other_base)
    record = json.loads((other_base / RECORD_FILE).read_text())
    next(iter(record["base"].values()))["version"] = "0.0.1"
    (other_base / RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(StoreError, match=r"delta\.json: trained on other base weights"):
        assemble(target_store, other_base, print, tiny_parts(store))

    other_outputs = tmp_path / "other-outputs"
    shutil.copytree(work / "delta", other_outputs)
    record = json.loads((other_outputs / RECORD_FILE).read_text())
    record["outputs"]["top_logits"][0] += 1.0
    (other_outputs / RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(StoreError, match="outputs differ from the recorded"):
        assemble(target_store, other_outputs, print, tiny_parts(store))

    older = tmp_path / "older"  # a recipe's delta from before the copy gate, hashed anew
    shutil.copytree(work / "delta", older)
    with np.load(older / WEIGHTS_FILE) as z:
        np.savez(older / WEIGHTS_FILE, **{k: z[k] for k in z.files if not k.startswith("copy.")})
    record = json.loads((older / RECORD_FILE).read_text())
    (older / RECORD_FILE).write_text(json.dumps({**record, "sha256": sha256_file(
        older / WEIGHTS_FILE)}))
    with pytest.raises(StoreError, match=r"delta\.npz: does not fit .*no copy\.bias"):
        assemble(target_store, older, print, tiny_parts(store))
    assert target_store.verify(student.STORE_NAME) == []  # what was stored is left whole


def test_the_compact_model_keeps_layers_evenly_and_answers_only_from_its_vocabulary():
    from glasses.export.student import CompactLM, answer_vocab, kept_layers

    assert kept_layers(30, 8) == [0, 4, 8, 12, 17, 21, 25, 29]
    assert kept_layers(30, 30) == list(range(30)) and kept_layers(2, 1) == [1]
    with pytest.raises(ValueError):
        kept_layers(4, 5)
    vocab = answer_vocab([[900, 901]], [[5, 950]], 1000, 10, [999])
    assert vocab == [*range(10), 900, 901, 950, 999]
    assert answer_vocab([], [], 50, 0, []) == list(range(50))
    torch.manual_seed(0)
    base = Llama(LlamaDims(n_layer=3, d_model=16, n_head=2, n_kv_head=1, d_ff=32,
                           n_vocab=1000))
    torch.nn.init.normal_(base.embed_t)
    names = [[900, 901], [950, 500], [3]]  # class 1's second token is outside the vocabulary
    lm = CompactLM(base, [0, 2], vocab, names, n_labels=2)
    assert lm.dims.n_layer == 2 and torch.equal(lm.blocks[1].q.weight, base.blocks[2].q.weight)
    h, k, _ = lm.last_hidden(lm.embed(torch.tensor([3, 950])), lm.empty_cache(),
                             lm.empty_cache())
    labels, prev = torch.tensor([[0, 1]]), torch.tensor([950])
    logits = lm.project(h, labels, prev)
    assert k.shape[0] == 2 and logits.shape == (1, 1000)
    outside = torch.ones(1000, dtype=torch.bool)
    outside[vocab] = False
    assert (logits[0, outside] == -1e9).all() and int(logits.argmax()) in vocab
    with torch.no_grad():  # the copy gate: the likeliest class's name, then the next's
        lm.copy.bias.copy_(torch.tensor([5.0, 2.0]))

    def bonus(prev: int, labels: tuple[int, int] = (0, 1)) -> list[float]:
        got = lm.project(h, torch.tensor([list(labels)]), torch.tensor([prev])) - logits
        assert got[0, [3, 5, 999]].abs().max() < 1e-5  # no other token changes
        return [round(float(x), 3) for x in got[0, [900, 901, 950]]]

    assert bonus(5) == [5, 0, 2]  # each name's first token
    assert bonus(900) == [0, 5, 2]  # then the one after, in order
    assert bonus(901) == [0, 0, 2]  # a name copied once: nothing after its last token
    assert bonus(950) == [5, 0, 0]  # class 1's name ends where the vocabulary does
    assert bonus(5, (1, 0)) == [2, 0, 5]  # the gate is per rank
    assert lm.head_targets(torch.tensor([950, 999])).tolist() == [12, 13]
    with pytest.raises(ValueError, match="outside the student's vocabulary"):
        lm.head_targets(torch.tensor([500]))


def test_a_student_distilled_before_it_saw_with_the_teachers_eyes_is_refused(tiny_student,
                                                                             tmp_path):
    target_store, _, _ = tiny_student
    entry = target_store.entry(student.STORE_NAME)
    files = {f.name: target_store.path(student.STORE_NAME, f.name) for f in entry.files}
    config = json.loads(files[student.CONFIG_FILE].read_text())
    del config["image"]
    (tmp_path / student.CONFIG_FILE).write_text(json.dumps(config))
    old = ModelStore(tmp_path / "home")
    old.add(student.STORE_NAME, {**files, student.CONFIG_FILE: tmp_path / student.CONFIG_FILE},
            entry.provenance)
    with pytest.raises(StoreError, match="an older student's; rebuild it"):
        student.Student(old, BoardProfile.laptop())
