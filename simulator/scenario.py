"""Scenarios: a session on a timeline, in a small TOML file.

    name = "kitchen"
    duration_s = 12          # optional: how long the session lasts (else: to the media end)
    audio = "mic.wav"        # optional: the whole microphone track; else the `say` items
                             # are spoken onto silence (text by the bundled voice)
    [[view]]                 # what the camera sees from `at` seconds on
    at = 0.0
    image = "cup.jpg"        # or: video = "clip.mp4"
    [[say]]                  # what is said when
    at = 1.0
    text = "What am I looking at?"
    wav = "q1.wav"           # optional: a recording of it (else the voice speaks `text`)
    expect = ["cup", "coffee"]  # optional: the answer should contain one of these words

Paths are relative to the file. `prepare` turns a scenario into the camera and microphone
media `glasses simulate` plays; `check` compares the answers with `expect`.
"""

import math
import tomllib
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from glasses.device.audio import SAMPLE_RATE, load_audio
from glasses.device.camera import Camera, read_image
from glasses.device.errors import BadInput
from glasses.evaluation.scoring import accepted

FPS = 15.0  # rendered views' frame rate
MAX_S = 4 * 3600  # a scenario's times and length, at most (rendering is bounded by it)
AUDIO_BLOCK_S = 60  # the microphone track is written this many seconds at a time
TAIL_S = 4.0  # a session lasts this long after the last question starts, by default
MATCH_S = 2.0  # an utterance is a `say` item's when it starts this close to `at`
KEYS = {"top": {"name", "duration_s", "audio", "view", "say"},
        "view": {"at", "image", "video"}, "say": {"at", "text", "wav", "expect"}}


@dataclass(frozen=True)
class View:
    at: float
    image: Path | None = None
    video: Path | None = None


@dataclass(frozen=True)
class Say:
    at: float
    text: str
    wav: Path | None = None
    expect: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    views: tuple[View, ...]
    says: tuple[Say, ...]
    audio: Path | None
    duration_s: float | None  # as the file says; None: until the media end

    @property
    def length_s(self) -> float:
        """How long rendered media last: `duration_s`, else past the last view and say."""
        if self.duration_s is not None:
            return self.duration_s
        return max([v.at + 2.0 for v in self.views] + [s.at + TAIL_S for s in self.says])


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario; BadInput names the file and what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: cannot read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: not valid TOML ({e})") from None
    where = path.parent

    def fail(message: str) -> BadInput:
        return BadInput(f"{path}: {message}")

    def check_keys(table: dict, kind: str, label: str) -> None:
        if unknown := set(table) - KEYS[kind]:
            raise fail(f"{label}: unknown key(s) {', '.join(sorted(unknown))} "
                       f"(expected {', '.join(sorted(KEYS[kind]))})")

    def at_of(table: dict, label: str) -> float:
        at = table.get("at")
        if not _seconds_ok(at, 0):
            raise fail(f"{label}: `at` must be a number of seconds from 0 to {MAX_S}, "
                       f"got {at!r}")
        return float(at)

    def tables(key: str) -> list[dict]:
        items = data.get(key, [])
        if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
            raise fail(f"`{key}` must be a list of tables ([[{key}]] sections)")
        return items

    def file_of(value, label: str) -> Path:
        file = where / str(value)
        if not file.is_file():
            raise fail(f"{label}: {value!r}: no such file")
        return file

    check_keys(data, "top", "top level")
    views = []
    for i, v in enumerate(tables("view"), 1):
        check_keys(v, "view", f"view {i}")
        if ("image" in v) == ("video" in v):
            raise fail(f"view {i}: give exactly one of `image` or `video`")
        kind = "image" if "image" in v else "video"
        views.append(View(at_of(v, f"view {i}"), **{kind: file_of(v[kind], f"view {i}")}))
    if not views:
        raise fail("no [[view]]: say what the camera sees")
    views.sort(key=lambda v: v.at)
    says = []
    for i, s in enumerate(tables("say"), 1):
        check_keys(s, "say", f"say {i}")
        text = s.get("text")
        if not isinstance(text, str) or not text.strip():
            raise fail(f"say {i}: `text` is required (what is said)")
        expect = s.get("expect", [])
        if isinstance(expect, str):
            expect = [expect]
        if not isinstance(expect, list) or not all(isinstance(e, str) for e in expect):
            raise fail(f"say {i}: `expect` must be a word or a list of words")
        wav = file_of(s["wav"], f"say {i}") if "wav" in s else None
        says.append(Say(at_of(s, f"say {i}"), text.strip(), wav, tuple(map(str, expect))))
    says.sort(key=lambda s: s.at)
    audio = file_of(data["audio"], "audio") if "audio" in data else None
    duration = data.get("duration_s")
    if duration is not None and not (_seconds_ok(duration, 0) and duration > 0):
        raise fail(f"duration_s must be a number of seconds above 0 and at most {MAX_S}, "
                   f"got {duration!r}")
    return Scenario(str(data.get("name", path.stem)), path, tuple(views), tuple(says), audio,
                    None if duration is None else float(duration))


def _seconds_ok(value, low: float) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and low <= value <= MAX_S)


def prepare(scenario: Scenario, folder: Path, size: tuple[int, int],
            speak: Callable[[str], np.ndarray] | None = None,
            until_s: float | None = None) -> tuple[str, str]:
    """(camera source, microphone WAV) for `glasses simulate`. One video at 0 s and a
    given `audio` are used as they are; anything else is rendered into `folder`, up to
    `until_s` (a session's --duration) at most. `speak` (text -> 16 kHz float32) voices
    `say` items that have no `wav`. Memory stays bounded however long the scenario."""
    length = min(scenario.length_s, until_s or MAX_S)
    views = scenario.views
    if len(views) == 1 and views[0].video is not None and views[0].at == 0:
        view = str(views[0].video)
    else:
        view = str(_render_views(scenario, folder / "view.mp4", size, length))
    if scenario.audio is not None:
        return view, str(scenario.audio)
    speech = []
    for say in scenario.says:
        if say.at >= length:
            continue
        if say.wav is not None:
            speech.append((say.at, load_audio(say.wav, max_s=600)))
        elif speak is not None:
            speech.append((say.at, speak(say.text)))
        else:
            raise BadInput(f"{scenario.path}: {say.text!r} has no `wav` and no voice to speak it")
    _write_track(folder / "audio.wav", speech, int(length * SAMPLE_RATE))
    return view, str(folder / "audio.wav")


def _write_track(path: Path, speech: list[tuple[float, np.ndarray]], n: int) -> None:
    """The microphone track: `n` samples of silence with each (at, samples) added, written
    a block at a time as 16-bit PCM at 16 kHz."""
    block = AUDIO_BLOCK_S * SAMPLE_RATE
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            part = np.zeros(hi - lo, np.float32)
            for at, samples in speech:
                start = int(at * SAMPLE_RATE)
                a, b = max(lo, start), min(hi, start + len(samples))
                if a < b:
                    part[a - lo : b - lo] += samples[a - start : b - start]
            w.writeframes((np.clip(part, -1, 1) * 32767).astype("<i2").tobytes())


def _render_views(scenario: Scenario, out: Path, size: tuple[int, int],
                  length_s: float) -> Path:
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    stills = {v.image: cv2.resize(read_image(v.image), size) for v in scenario.views if v.image}
    videos: dict[Path, _Playback] = {}
    try:
        for i in range(int(length_s * FPS)):
            t = i / FPS
            view = [v for v in scenario.views if v.at <= t]
            view = view[-1] if view else scenario.views[0]
            if view.image is not None:
                frame = stills[view.image]
            else:
                if view.video not in videos:
                    videos[view.video] = _Playback(Camera.open(view.video, size=size), size)
                frame = videos[view.video].at(t - view.at)
            writer.write(frame)
    finally:
        writer.release()
        for video in videos.values():
            video.camera.close()
    return out


class _Playback:
    """A video played at its own pace from its view's start; its last frame stays."""

    def __init__(self, camera: Camera, size: tuple[int, int]):
        self.camera, self._frames = camera, camera.frames()
        self._shown = np.zeros((size[1], size[0], 3), np.uint8)
        self._next = next(self._frames, None)

    def at(self, seconds: float) -> np.ndarray:
        while self._next is not None and self._next.media_ns <= seconds * 1e9:
            self._shown, self._next = self._next.image, next(self._frames, None)
        return self._shown


def check(scenario: Scenario, turns: list[dict]) -> list[dict]:
    """Each `say` with its turn (the utterance starting within `MATCH_S` of `at`), its
    answer and whether the answer holds an expected word."""
    results = []
    for say in scenario.says:
        near = [t for t in turns if abs(t["start"] - say.at) <= MATCH_S]
        turn = min(near, key=lambda t: abs(t["start"] - say.at)) if near else None
        answer = turn.get("answer") if turn else None
        results.append({"at": say.at, "said": say.text, "heard": turn["text"] if turn else None,
                        "answer": answer, "expect": list(say.expect),
                        "passed": None if not say.expect else bool(
                            answer and accepted(answer, list(say.expect)))})
    return results
