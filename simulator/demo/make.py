"""Rebuild the built-in demo's media: `python -m simulator.demo.make` (needs hibari-tts,
a dev dependency: its bundled voice, offline).

demo.mp4: 10 s at 15 fps, 640x480: a red mug on a table, then an exit sign.
demo.wav: 16 kHz mono: two questions asked while each is in view.
"""

from pathlib import Path

import cv2
import numpy as np

from device.audio import SAMPLE_RATE, resample, write_wav

HIBARI_RATE = 24000  # Hz, the bundled voice's rate

HERE = Path(__file__).parent
FPS, SECONDS, SIZE = 15, 10, (640, 480)
QUESTIONS = ((1.0, "What am I looking at?"), (5.5, "Read that sign for me."))


def scene(t: float) -> np.ndarray:
    w, h = SIZE
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (190, 200, 205)  # wall
    img[int(h * 0.72) :] = (70, 90, 120)  # floor
    drift = int(8 * np.sin(t * 1.3))  # a wearer's head is never still
    if t < 5.0:  # a red mug on a table
        cv2.rectangle(img, (120, 300), (520, 330), (40, 60, 90), -1)
        cv2.rectangle(img, (270 + drift, 200), (360 + drift, 300), (30, 30, 200), -1)
        cv2.ellipse(img, (365 + drift, 250), (30, 28), 0, -90, 90, (30, 30, 200), 12)
    else:  # an exit sign
        cv2.rectangle(img, (180 + drift, 120), (460 + drift, 230), (40, 140, 20), -1)
        cv2.putText(img, "EXIT", (215 + drift, 200), cv2.FONT_HERSHEY_DUPLEX, 2.4,
                    (255, 255, 255), 5, cv2.LINE_AA)
    return img


def main() -> None:
    writer = cv2.VideoWriter(str(HERE / "demo.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for i in range(FPS * SECONDS):
        writer.write(scene(i / FPS))
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
