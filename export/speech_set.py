"""A speech evaluation set of assistant requests, made offline: `*.wav` plus `truth.tsv`.

Each clip is one request a wearer of the glasses might say, spoken by espeak-ng (many voices
and variants, 120-200 wpm, pitch 30-70) or, when the `hibari-tts` package is installed, by its
bundled voice; padded with 0.2-1.0 s of silence at each end and mixed with white, pink, babble
or mains-hum noise at 20, 10 or 5 dB SNR (babble: 20 or 15 dB), or left clean. The SNR is over
the speech; the noise runs through the silence too. Clips are 16 kHz mono 16-bit WAV.
truth.tsv has no header: file, voice, speed, pitch, noise, snr_db, text (a scorer reads only
the first and the last column). The same seed gives the same files.

    python -m glasses.export.speech_set OUT_DIR [--count N] [--seed S]
"""

import argparse
import functools
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from glasses.device.audio import SAMPLE_RATE, load_audio, resample, write_wav

REQUESTS = [
    "What am I looking at?", "Read that sign for me.", "What colour is this shirt?",
    "How much does this cost?", "What does this label say?", "Is this the bus to the station?",
    "Translate the menu.", "Who made this painting?", "What time does this shop close?",
    "Is this the number 42 bus to King's Cross?", "How many calories are in this?",
    "What breed is that dog?", "Read me the first line of this page.", "What's this plant called?",
    "Is this milk still in date?", "Which platform does the 9:15 train leave from?",
    "Translate this sign into English.", "What's the Wi-Fi password on that card?",
    "Remind me to call Priya at 6 o'clock.", "Who is the author of this book?",
    "How do I get to Baker Street from here?", "What does this warning light mean?",
    "Is there any gluten in this?", "What's the total on this receipt?",
    "Take a photo.", "Zoom in.", "What's that building?", "Is this the right size for me?",
    "Read the ingredients out loud, please.", "How far is it to the nearest pharmacy?",
    "What is the price per kilo?", "Which of these two is cheaper?",
    "Can you tell me what this poster is advertising?", "What model of car is that?",
    "Send this picture to Maria.", "What year was this church built?",
    "Is this mushroom safe to eat?", "What's the name of this song?",
    "Count the people in the queue.",
    "What does the small print at the bottom say?", "Who is on this banknote?",
    "Is the pharmacy on the left or the right?", "What gate is flight BA 117 boarding at?",
    "How many stops until Central Station?", "Describe the room in front of me.",
    "What does this button do?", "Is the traffic light green?", "What's written on the whiteboard?",
    "Which way is north?", "Tell me the opening hours of this museum.",
    "Does this jacket come in blue?", "Translate what the waiter just wrote down.",
    "What's the expiry date on this medicine?", "How old is this tree, roughly?",
    "What kind of bird is that?", "Is this seat free?", "Add three apples to my shopping list.",
    "What's the dosage on this bottle?", "Read the street name on that corner.",
    "Is this a ten pound note or a twenty?", "Who painted the Mona Lisa?", "Stop.",
]
# Voices and variants of espeak-ng 1.51 checked to sound different from one another. Variants
# go on "en", not "en-gb": espeak-ng silently ignores the variant of "en-gb+...".
ESPEAK_VOICES = [
    "en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
    "en-us-nyc", "en-us+f3", "en-us+m3", "en+klatt", "en-gb-x-rp+f2", "en+f4", "en-us+m7",
    "en-029+f1", "en-gb-scotland+m5", "en-us+klatt2", "en-us-nyc+f5", "en-us+Andy", "en+grandma",
]
HIBARI_VOICE = "hibari-heart"  # the one voice inside the hibari-tts wheel (24 kHz)
NOISES = ("clean", "white", "pink", "babble", "hum")
SNRS_DB = (20.0, 10.0, 5.0)
BABBLE_SNRS_DB = (20.0, 15.0)  # babble is competing speech: keep it at a low level
MAX_SPEECH_S = 5.0
TRUTH = "truth.tsv"
Progress = Callable[[str], None]


def _espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                        "-w", str(wav), text], check=True, capture_output=True)
        return load_audio(wav)


@functools.cache
def _hibari() -> Any:
    """hibari-tts with its bundled voice, or None where the package is not installed."""
    try:
        from hibari import Hibari
    except ImportError:
        return None
    return Hibari()  # the default voice ships in the wheel: nothing is downloaded


def _trim(x: np.ndarray, frame: int = 160, floor_db: float = -40.0) -> np.ndarray:
    """x without its leading and trailing 10 ms frames quieter than floor_db below the peak."""
    n = len(x) // frame
    rms = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (floor_db / 20))
    return x[loud[0] * frame: (loud[-1] + 1) * frame] if len(loud) else x


def _say(text: str, voice: str, speed: int, pitch: int, seed: int) -> tuple[np.ndarray, int]:
    """(trimmed speech at 16 kHz, words per minute used): faster if it would exceed 5 s."""
    for _ in range(3):
        if voice == HIBARI_VOICE:
            x = _hibari()(text, speed=min(2.0, max(0.5, speed / 160)), seed=seed)
            x = resample(np.asarray(x, dtype=np.float32), 24000, SAMPLE_RATE)
        else:
            x = _espeak(text, voice, speed, pitch)
        x = _trim(x)
        if len(x) <= MAX_SPEECH_S * SAMPLE_RATE or speed >= 320:
            break
        speed = min(320, int(np.ceil(speed * len(x) / (0.95 * MAX_SPEECH_S * SAMPLE_RATE))))
    return x, speed


def noise_gain(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """The factor on noise[:len(speech)] that puts it snr_db below speech (mean powers)."""
    if len(noise) < len(speech):
        raise ValueError(f"noise has {len(noise)} samples, speech {len(speech)}")
    p_speech = float(np.mean(np.square(speech, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise[: len(speech)], dtype=np.float64)))
    if p_noise == 0.0:
        raise ValueError("noise is silent")
    return float(np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10))))


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech plus noise scaled so that the mix has the given signal-to-noise ratio in dB."""
    g = noise_gain(speech, noise, snr_db)
    return (speech + g * noise[: len(speech)]).astype(np.float32)


def _noise(kind: str, n: int, rng: np.random.Generator, text: str) -> np.ndarray:
    """n samples of white, pink, babble (3 other requests, other voices) or hum noise."""
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        return np.fft.irfft(spec / np.sqrt(f), n)
    if kind == "hum":
        f0 = float(rng.choice([50.0, 60.0]))
        t = np.arange(n) / SAMPLE_RATE
        return sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3))
                   for k in range(1, 9))
    if kind == "babble":
        others = [r for r in REQUESTS if r != text]
        out = np.zeros(n)
        for j in rng.choice(len(others), 3, replace=False):
            voice = ESPEAK_VOICES[rng.integers(len(ESPEAK_VOICES))]
            s = _trim(_espeak(others[j], voice, int(rng.integers(140, 201)),
                              int(rng.integers(30, 71))))
            seg = np.concatenate([s / (np.sqrt(np.mean(s**2)) + 1e-9),
                                  np.zeros(int(rng.integers(0, SAMPLE_RATE // 2)))])
            start = int(rng.integers(len(seg)))
            out += np.tile(seg, n // len(seg) + 2)[start: start + n]
        return out
    raise ValueError(f"unknown noise {kind!r}; known: {', '.join(NOISES)}")


def _write_truth(out_dir: Path, rows: list[dict]) -> None:
    keys = ("file", "voice", "speed", "pitch", "noise", "snr_db", "text")
    lines = ["\t".join("-" if r[k] is None else str(r[k]) for k in keys) + "\n" for r in rows]
    fd, tmp = tempfile.mkstemp(prefix=f".{TRUTH}.", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_dir / TRUTH)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_speech_set(out_dir: Path, count: int = 40, seed: int = 0, progress: Progress = print,
                    *, hibari: bool | None = None, clean_dir: Path | None = None) -> list[dict]:
    """Write `count` clips and truth.tsv into out_dir; return one metadata dict per clip.

    hibari: also speak with hibari-tts's bundled voice (None: where it is installed; the set
    then differs from one made without it). clean_dir: also write each clip without its
    noise there (same name, same level), to measure the SNR against.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if hibari and _hibari() is None:
        raise RuntimeError("hibari-tts is not installed (pip install hibari-tts==0.2.1)")
    voices = ESPEAK_VOICES + ([HIBARI_VOICE] if hibari is not False and _hibari() else [])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if clean_dir is not None:
        Path(clean_dir).mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed)
    texts, voice_order = order.permutation(len(REQUESTS)), order.permutation(len(voices))
    noise_order = order.permutation(len(NOISES))
    rows: list[dict] = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])  # clip i is the same whatever the count
        text = REQUESTS[texts[i % len(texts)]]
        voice = voices[voice_order[i % len(voices)]]
        pitch = None if voice == HIBARI_VOICE else int(rng.integers(30, 71))
        speech, speed = _say(text, voice, int(rng.integers(120, 201)), pitch or 50,
                             int(rng.integers(2**31)))
        lead, trail = (int(rng.uniform(0.2, 1.0) * SAMPLE_RATE) for _ in range(2))
        clean = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
        kind = NOISES[noise_order[i % len(NOISES)]]
        snr: float | None = None
        mix = clean
        if kind != "clean":
            snr = float(rng.choice(BABBLE_SNRS_DB if kind == "babble" else SNRS_DB))
            noise = _noise(kind, len(clean), rng, text)
            mix = clean + noise_gain(speech, noise[lead: lead + len(speech)], snr) * noise
        scale = rng.uniform(0.3, 0.9) / max(float(np.max(np.abs(mix))), 1e-9)  # peak level
        name = f"req_{i:03d}.wav"
        write_wav(out_dir / name, mix * scale, SAMPLE_RATE)
        if clean_dir is not None:
            write_wav(Path(clean_dir) / name, clean * scale, SAMPLE_RATE)
        row = {"file": name, "text": text, "voice": voice, "speed": speed, "pitch": pitch,
               "noise": kind, "snr_db": snr, "seconds": round(len(mix) / SAMPLE_RATE, 3),
               "lead_s": lead / SAMPLE_RATE, "trail_s": trail / SAMPLE_RATE}
        rows.append(row)
        at = f"{snr:g} dB" if snr is not None else ""
        progress(f"[{i + 1}/{count}] {name} {row['seconds']:.2f}s {voice} {speed}wpm "
                 f"{kind} {at}: {text}")
    wanted = {r["file"] for r in rows}
    for old in out_dir.glob("req_*.wav"):  # clips of an earlier, larger set
        if old.name not in wanted:
            old.unlink()
    _write_truth(out_dir, rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m glasses.export.speech_set",
                                 description="Write a speech evaluation set of requests.")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rows = make_speech_set(args.out_dir, args.count, args.seed)
    print(f"wrote {len(rows)} clips and {TRUTH} to {args.out_dir}")


if __name__ == "__main__":
    main()
