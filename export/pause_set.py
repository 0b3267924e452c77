"""A turn-taking set, made offline: questions with a pause inside, and the same said whole.

Each question is split where people pause to think ("Can you tell me ... what is written
on that sign?"). A `paused` clip says the question as one sentence with 0.5-1.0 s of
silence after the first part (`_paused`); a `whole` clip says it in one go. Voices:
espeak-ng voices and variants and, when `hibari-tts` is installed, its bundled voice;
some clips get light noise. Each clip has 0.4-0.8 s of silence before and 2.0 s after
(room for the longest wait). 16 kHz mono WAV, plus `truth.tsv` without a header: file,
kind, voice, first part, rest, speech start, pause start, pause end, speech end
(samples; the pause columns are empty for `whole` clips). The same seed gives the same files.

    python -m glasses.export.pause_set OUT_DIR [--seed S]
"""

import argparse
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from glasses.device.audio import SAMPLE_RATE, load_audio, write_wav
from glasses.export.speech_set import (
    ESPEAK_VOICES,
    HIBARI_VOICE,
    _hibari,
    _say,
    _trim,
    mix_at_snr,
)

# (first part, rest): the pause falls where a wearer stops to think or look
QUESTIONS = [
    ("Can you tell me", "what is written on that sign?"),
    ("What colour is", "the wall I am facing?"),
    ("Is this the bus", "to the train station?"),
    ("How much does", "this bottle of water cost?"),
    ("Read me", "the first line of this page."),
    ("What kind of", "bird is sitting on the fence?"),
    ("Which platform does", "the next train to London leave from?"),
    ("Remind me to", "buy milk on the way home."),
    ("What does", "the small print at the bottom say?"),
    ("Is there any", "gluten in this packet of biscuits?"),
    ("How far is it", "to the nearest pharmacy?"),
    ("Do you remember", "where I left my keys?"),
    ("What is the name of", "the street on that corner?"),
    ("Tell me the opening hours", "of the museum across the road."),
    ("Which of these two", "jackets is cheaper?"),
    ("What's the expiry date", "on this carton of milk?"),
    ("Can you read", "the price on that label?"),
    ("Where did I", "park my bike this morning?"),
    ("What model of", "car is parked in front of me?"),
    ("How many calories", "are in this chocolate bar?"),
    ("Is the pharmacy", "on the left or on the right?"),
    ("What does this", "warning light on the dashboard mean?"),
    ("Remember that my", "locker number is forty two."),
    ("What gate is", "flight two one seven boarding at?"),
    ("Translate the", "menu on the wall into English."),
    ("What is the total", "on this receipt?"),
    ("Have I seen", "this poster somewhere before?"),
    ("Which way is", "the exit from this building?"),
    ("Describe the", "room in front of me."),
    ("Is this seat", "free or is it taken?"),
]
PAUSE_S = (0.5, 1.0)
LEAD_S = (0.4, 0.8)
TAIL_S = 2.0
NOISES = ("clean", "clean", "white", "pink")  # half clean, the rest light noise at 20 dB
TRUTH = "truth.tsv"
Progress = Callable[[str], None]


def _voices(count: int, rng: np.random.Generator) -> list[str]:
    voices = list(ESPEAK_VOICES)
    if _hibari() is not None:
        voices.append(HIBARI_VOICE)
    return [voices[i % len(voices)] for i in rng.permutation(count)]


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n).astype(np.float32)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    return np.fft.irfft(spectrum, n).astype(np.float32)


def _paused(first: str, rest: str, voice: str, speed: int, pitch: int, pause_s: float,
            seed: int) -> tuple[np.ndarray, int, int]:
    """(speech, pause start, pause end): the question said as one sentence with a pause
    after `first`, so the first part keeps the rising, unfinished sound of mid-sentence
    (said alone, a part sounds finished). espeak-ng takes an SSML break; the bundled voice
    says the sentence whole, and the pause goes into the quietest 10 ms near the boundary."""
    if voice != HIBARI_VOICE:
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "say.wav"
            ssml = f'<speak>{first} <break time="{int(pause_s * 1000)}ms"/> {rest}</speak>'
            subprocess.run(["espeak-ng", "-m", "-v", voice, "-s", str(speed), "-p", str(pitch),
                            "-w", str(wav), ssml], check=True, capture_output=True)
            x = _trim(load_audio(wav))
        quiet = _quiet_run(x)
        return x, quiet[0], quiet[1]
    whole, _ = _say(f"{first} {rest}", voice, speed, pitch, seed)
    part, _ = _say(first, voice, speed, pitch, seed)
    guess = int(len(whole) * min(0.9, len(part) / (len(part) + len(_say(rest, voice, speed, pitch,
                                                                           seed)[0]))))
    frame = 160
    lo, hi = max(frame, guess - SAMPLE_RATE // 4), min(len(whole) - frame, guess + SAMPLE_RATE // 4)
    energy = [float(np.square(whole[i:i + frame]).sum()) for i in range(lo, hi, frame)]
    cut = lo + frame * int(np.argmin(energy))
    pause = np.zeros(int(pause_s * SAMPLE_RATE), np.float32)
    return np.concatenate([whole[:cut], pause, whole[cut:]]), cut, cut + len(pause)


def _quiet_run(x: np.ndarray, frame: int = 160) -> tuple[int, int]:
    """(start, end) of the longest run of quiet 10 ms frames inside `x` (the break)."""
    n = len(x) // frame
    rms = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    quiet = rms < rms.max() * 10 ** (-40 / 20)
    best, run_start, best_span = (0, 0), None, 0
    for i, q in enumerate([*quiet, False]):
        if q and run_start is None:
            run_start = i
        elif not q and run_start is not None:
            if i - run_start > best_span:
                best, best_span = (run_start * frame, i * frame), i - run_start
            run_start = None
    return best


def make_pause_set(out_dir: Path, seed: int = 0, progress: Progress = print) -> Path:
    """Write the set into `out_dir` (created); returns the path of its truth.tsv."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    voices = _voices(len(QUESTIONS), rng)
    for i, ((first, rest), voice) in enumerate(zip(QUESTIONS, voices, strict=True)):
        speed, pitch = int(rng.integers(140, 190)), int(rng.integers(35, 65))
        lead = np.zeros(int(rng.uniform(*LEAD_S) * SAMPLE_RATE), np.float32)
        tail = np.zeros(int(TAIL_S * SAMPLE_RATE), np.float32)
        paused, p0, p1 = _paused(first, rest, voice, speed, pitch, rng.uniform(*PAUSE_S), seed + i)
        whole, _ = _say(f"{first} {rest}", voice, speed, pitch, seed + i)
        noise = NOISES[i % len(NOISES)]
        for kind, speech in (("paused", paused), ("whole", whole)):
            clip = np.concatenate([lead, speech, tail])
            if noise != "clean":
                clip = mix_at_snr(clip, _noise(noise, len(clip), rng), 20.0 + 10 * np.log10(
                    len(speech) / len(clip)))  # 20 dB over the speech itself
            name = f"{i:02d}-{kind}.wav"
            write_wav(out_dir / name, clip, SAMPLE_RATE)
            start, end = len(lead), len(lead) + len(speech)
            pause = (start + p0, start + p1) if kind == "paused" else ("", "")
            rows.append((name, kind, f"{voice}/{noise}", first, rest, start, *pause, end))
        progress(f"  {i + 1}/{len(QUESTIONS)} {voice}: {first} ... {rest}")
    truth = out_dir / TRUTH
    truth.write_text("".join("\t".join(map(str, r)) + "\n" for r in rows))
    return truth


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    make_pause_set(a.out_dir, a.seed)


if __name__ == "__main__":
    main()
