"""Text reading (PP-OCRv4 on onnxruntime): real models on signs rendered with opencv."""

import cv2
import numpy as np
import pytest

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.models.ocr import TextLine, TextReader
from glasses.models.store import ModelStore

SIZE = (640, 480)  # width, height: the camera's frame

# text, background BGR, text BGR, font, scale
SIGNS = [
    ("EXIT", (40, 140, 30), (255, 255, 255), cv2.FONT_HERSHEY_SIMPLEX, 3.0),
    ("PLATFORM 4", (120, 50, 20), (255, 255, 255), cv2.FONT_HERSHEY_DUPLEX, 1.6),
    ("OPEN 9-5", (255, 255, 255), (30, 30, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.0),
    ("NO PARKING", (0, 200, 255), (20, 20, 20), cv2.FONT_HERSHEY_TRIPLEX, 1.5),
]


@pytest.fixture(scope="module")
def ocr_store(store) -> ModelStore:
    """The real store, prepared with `ppocr-v4` (by the session fixture)."""
    return store


@pytest.fixture(scope="module")
def reader(ocr_store) -> TextReader:
    return TextReader(ocr_store, BoardProfile.laptop())


def sign(text, background, colour, font, scale, size=SIZE) -> np.ndarray:
    """A (H, W, 3) BGR image with `text` centred on a plain background."""
    img = np.full((size[1], size[0], 3), background, np.uint8)
    thickness = max(2, int(scale * 2))
    (w, h), _ = cv2.getTextSize(text, font, scale, thickness)
    org = ((size[0] - w) // 2, (size[1] + h) // 2)
    cv2.putText(img, text, org, font, scale, colour, thickness, cv2.LINE_AA)
    return img


def squash(text: str) -> str:
    return "".join(text.upper().split())


def read_all(reader: TextReader, image: np.ndarray) -> str:
    return squash("".join(line.text for line in reader.read(image).lines))


@pytest.mark.parametrize("spec", SIGNS, ids=[s[0] for s in SIGNS])
def test_reads_a_sign(reader, spec):
    reading = reader.read(sign(*spec))
    lines = reading.lines
    assert squash(spec[0]) in squash("".join(line.text for line in lines))
    line = lines[0]
    assert isinstance(line, TextLine)
    assert line.box.shape == (4, 2) and line.box.dtype == np.float32
    assert 0.5 <= line.confidence <= 1.0
    assert set(reading.timings_ms) >= {"det", "rec"}


def test_reads_a_sign_turned_by_ten_degrees(reader):
    img = sign(*SIGNS[3])
    m = cv2.getRotationMatrix2D((SIZE[0] / 2, SIZE[1] / 2), 10, 1.0)
    turned = cv2.warpAffine(img, m, SIZE, borderMode=cv2.BORDER_REPLICATE)
    assert "NOPARKING" in read_all(reader, turned)


def test_reads_a_blurred_noisy_sign(reader):
    """(PP-OCRv4 reads the narrow Hershey "O" of PLATFORM as "0" under some noise, as
    rapidocr does too: hence OPEN 9-5 here.)"""
    rng = np.random.default_rng(5)
    img = cv2.GaussianBlur(sign(*SIGNS[2]), (5, 5), 0).astype(np.float32)
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    assert "OPEN9-5" in read_all(reader, img)


def test_lines_come_in_reading_order_with_boxes_in_input_pixels(reader):
    img = np.full((SIZE[1], SIZE[0], 3), (200, 200, 200), np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "TOILETS", (400, 125), font, 1.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, "LIFTS", (40, 120), font, 1.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, "EXIT", (40, 320), font, 1.5, (0, 0, 0), 3, cv2.LINE_AA)
    lines = reader.read(img).lines
    assert [squash(line.text) for line in lines] == ["LIFTS", "TOILETS", "EXIT"]
    x0, y0 = lines[2].box.min(axis=0)
    x1, y1 = lines[2].box.max(axis=0)
    assert 20 < x0 < 50 and 270 < y0 < 300 and 110 < x1 < 160 and 315 < y1 < 345


def test_a_blank_image_has_no_lines(reader):
    assert reader.read(np.full((SIZE[1], SIZE[0], 3), (90, 60, 30), np.uint8)).lines == ()


def test_grayscale_and_bgra_are_read(reader):
    img = sign(*SIGNS[0])
    assert "EXIT" in read_all(reader, cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    assert "EXIT" in read_all(reader, cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))


def test_a_huge_image_is_downscaled_and_read(reader):
    """8000 x 6000 (144 MB): read at a bounded size; boxes come back in its pixels."""
    img = cv2.resize(sign(*SIGNS[0], size=(800, 600)), (8000, 6000), interpolation=cv2.INTER_LINEAR)
    lines = reader.read(img).lines
    assert "EXIT" in squash("".join(line.text for line in lines))
    assert lines[0].box[:, 0].max() > 4000  # in the input's pixels, not the downscaled ones


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 640, 3), (480, 0), (0,)])
def test_an_empty_image_is_bad_input(reader, shape):
    with pytest.raises(BadInput):
        reader.read(np.zeros(shape, np.uint8))


def test_a_non_uint8_image_is_bad_input(reader):
    with pytest.raises(BadInput):
        reader.read(np.zeros((48, 64, 3), np.float32))


@pytest.mark.parametrize("read, meant", [
    ("PLATF0RM 4", "PLATFORM 4"), ("R00M101", "ROOM101"), ("ROOM 1O1", "ROOM 101"),
    ("GATE C7", "GATE C7"), ("SALE 50% OFF", "SALE 50% OFF"), ("A1", "A1"), ("EXIT", "EXIT"),
])
def test_letters_and_digits_are_told_apart_by_their_neighbours(read, meant):
    from glasses.models.ocr import lookalikes

    assert lookalikes(read) == meant


def test_the_dictionary_matches_the_model_with_the_space_last(reader):
    """Blank first, the model's 6623 characters, the space last: as many as its classes."""
    classes = reader._rec.get_outputs()[0].shape[-1]
    assert len(reader.characters) == classes and reader.characters[0] == ""
    assert reader.characters[-1] == " " and " " not in reader.characters[1:-1]


def test_words_keep_their_spaces(reader):
    img = sign("LIFT OUT OF ORDER", (160, 70, 20), (255, 255, 255), cv2.FONT_HERSHEY_DUPLEX, 1.2)
    assert " ".join(line.text for line in reader.read(img).lines).upper() == "LIFT OUT OF ORDER"
