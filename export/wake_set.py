"""A wake-word set, made offline: wake phrases in many voices and noises, and an hour of
other speech and noise.

`positives/*.wav` + `positives.tsv`: "okay nabu" (or "ok nabu"), alone or followed after
a short pause by a question ("okay nabu, what is this?"), in every voice family of
`VOICES` (espeak-ng voices and variants at random speeds and pitches; the bundled
hibari voice when installed) under every background of `NOISES` (a quiet room, white and
pink noise, babble made of other speech, at the signal-to-noise ratios named). Columns:
file, voice family, voice, noise, wake start, wake end, question start (-1: none), text,
speed (words a minute), pitch (0-99); positions are sample indices at 16 kHz. Each phrase
comes after 2-4 s of its background, as the listener, always on, hears the room first.

`other/*.wav` + `other.tsv`: `minutes` of speech that is not the wake word, in 5-minute
files: espeak-ng (and hibari) reading varied sentences, near-misses among them ("okay",
"okay now", "ok google", "nab", "navy blue", "bamboo"), with pauses, stretches of
background alone and short non-speech sounds (beeps, hum, bursts), each file under one
background of `NOISES`. Columns: file, noise, start, end, voice, text of each spoken
block.

Splits: `dev` (tuning) and `holdout` (reporting), 60 minutes of other speech each, use
different seeds, so different sentences, voices' speeds and pitches, and noise.
The same split and seed give the same files. A set already made is kept
(`manifest.json`); `glasses eval wake` makes the one it needs under the glasses home.

    python -m glasses.export.wake_set [OUT_DIR] [--split dev|holdout] [--minutes M]
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glasses.device.audio import SAMPLE_RATE, load_audio, write_wav
from glasses.device.errors import GlassesError
from glasses.models.store import default_home

SET_VERSION = 3  # bump when what is made changes: sets made before are remade
SPLITS = {"dev": (101, 60, 3), "holdout": (202, 60, 5)}  # seed, other minutes, clips a cell
SEGMENT_S = 300  # other speech comes in files of 5 minutes
VOICES = {  # family -> espeak-ng voices (+variants); "hibari" is the bundled voice
    "en-us male": ("en-us", "en-us+m1", "en-us+m3", "en-us+m7"),
    "en-us female": ("en-us+f1", "en-us+f2", "en-us+f3", "en-us+f4", "en-us+f5"),
    "en-gb male": ("en-gb", "en-gb-x-rp", "en-gb-x-gbclan+m2", "en-gb-x-gbcwmd"),
    "en-gb female": ("en-gb+f2", "en-gb-x-rp+f4", "en-gb+f5"),
    "scottish": ("en-gb-scotland", "en-gb-scotland+f3"),
    "caribbean": ("en-029", "en-029+f2"),
    "new york": ("en-us-nyc", "en-us-nyc+m4"),
    "klatt": ("en-us+klatt", "en-us+klatt2", "en-us+klatt4"),
    "hibari": ("hibari",),
}
NOISES = {"quiet": None, "white 20 dB": ("white", 20), "pink 10 dB": ("pink", 10),
          "pink 5 dB": ("pink", 5), "babble 15 dB": ("babble", 15),
          "babble 10 dB": ("babble", 10)}
LEAD_S = (2.0, 4.0)  # background before a wake phrase: the listener hears the room first
QUIET = 1e-3  # RMS of the quiet room's white noise: -60 dBFS
WAKE = ("okay nabu", "ok nabu")
HIBARI_WAKE = "Okay Naboo"  # the spelling the hibari voice says as "nah-boo"
QUESTIONS = ("what is this?", "what am I looking at?", "read that sign for me.",
             "how much does this cost?", "who makes this?", "translate the menu.",
             "what colour is that car?", "remind me to buy milk.")
NEAR_MISSES = ("okay.", "okay now.", "ok google.", "okay, now what?", "nab it.", "okay then.",
               "hey siri.", "alexa, play some music.", "hey jarvis.", "navy blue.",
               "the bamboo is tall.", "that topic is taboo.", "okay, no problem.",
               "a kabuki theatre.", "okay Nadia, see you.", "they nabbed the thief.",
               "ok, boomer.", "a banana, please.", "okay, I know.", "nobody knows.")
SUBJECTS = ("the train", "my sister", "the new cafe", "our neighbour", "this phone",
            "the weather", "the meeting", "a small dog", "the museum", "my laptop",
            "the red bus", "the market", "your brother", "the printer", "the old bridge")
VERBS = ("is late again", "opens at nine", "looks great today", "needs a new battery",
         "was closed on Monday", "moved to the second floor", "costs too much",
         "will start soon", "made a strange noise", "is near the station",
         "takes about an hour", "was painted blue", "has a long queue", "seems broken")
ASKS = ("can you tell me {}", "I wonder why {}", "do you know if {}", "let me check whether {}",
        "remember that {}", "I heard that {}")
CHATTER = ("where did I put my keys?", "turn left at the next corner.", "that smells lovely.",
           "put the box on the table.", "how was your weekend?", "I need a coffee first.",
           "the book is on the shelf.", "call me when you arrive.", "it is twenty past four.",
           "bring an umbrella tomorrow.", "the tickets are sold out.", "let's take the stairs.",
           "could you pass the salt?", "this road goes to the harbour.", "lunch is ready.")


@dataclass
class Speaker:
    """Speech from espeak-ng or the hibari voice, (n,) float32 at 16 kHz."""

    tmp: Path
    hibari: object | None

    def __call__(self, voice: str, text: str, speed: int, pitch: int) -> np.ndarray:
        if voice == "hibari":
            self.hibari.speed = speed / 160
            return self.hibari.speak(text.replace("nabu", HIBARI_WAKE.split()[1]))
        out = self.tmp / "say.wav"
        subprocess.run(["espeak-ng", "-m", "-v", voice, "-s", str(speed), "-p", str(pitch),
                        "-w", str(out), text], check=True)
        return load_audio(out)


def _hibari():
    try:
        from glasses.device.voice import Voice

        return Voice()
    except GlassesError:
        return None


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    x = np.fft.irfft(spectrum, n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def active_rms(x: np.ndarray, frame: int = 160) -> float:
    """RMS of the 10 ms frames within 35 dB of the loudest: the speech, not its pauses."""
    n = len(x) // frame
    rms = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    loud = rms[rms > rms.max() * 10 ** (-35 / 20)]
    return float(np.sqrt((loud**2).mean())) if len(loud) else 0.0


def background(kind: str | None, n: int, rng: np.random.Generator, babble: np.ndarray
               ) -> np.ndarray:
    """`n` samples of a background at unit RMS."""
    if kind in (None, "white"):
        return rng.standard_normal(n).astype(np.float32)
    if kind == "pink":
        return pink(n, rng)
    start = int(rng.integers(0, len(babble) - n)) if len(babble) > n else 0
    x = np.resize(babble[start:], n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def mix(speech: np.ndarray, noise: str, rng: np.random.Generator, babble: np.ndarray
        ) -> np.ndarray:
    """Speech at a random level (peak -18 to -3 dBFS) over the background `noise`."""
    speech = speech * (10 ** (rng.uniform(-18, -3) / 20) / (np.abs(speech).max() + 1e-9))
    spec = NOISES[noise]
    kind, snr = (None, 0) if spec is None else spec
    level = QUIET if kind is None else active_rms(speech) / 10 ** (snr / 20)
    out = speech + level * background(kind, len(speech), rng, babble)
    return np.clip(out, -1, 1).astype(np.float32)


def sentence(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.2:
        return str(rng.choice(NEAR_MISSES))
    if r < 0.45:
        return str(rng.choice(CHATTER))
    clause = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)}"
    if r < 0.7:
        return str(rng.choice(ASKS)).format(clause) + "."
    return clause[0].upper() + clause[1:] + "."


def _voice(rng: np.random.Generator, families: list[str]) -> tuple[str, str, int, int]:
    family = str(rng.choice(families))
    return (family, str(rng.choice(VOICES[family])), int(rng.integers(125, 200)),
            int(rng.integers(25, 75)))


def make_babble(say: Speaker, rng: np.random.Generator, seconds: float = 60) -> np.ndarray:
    """Four talkers at once, other sentences than the set's (a different generator)."""
    n = int(seconds * SAMPLE_RATE)
    total = np.zeros(n, np.float32)
    for _ in range(4):
        parts, length = [], 0
        while length < n:
            _, voice, speed, pitch = _voice(rng, [f for f in VOICES if f != "hibari"])
            text = " ".join(sentence(rng) for _ in range(4))
            parts.append(say(voice, text, speed, pitch))
            length += len(parts[-1])
        x = np.concatenate(parts)[:n]
        total += x / (x.std() + 1e-9)
    return total


def positives(out: Path, say: Speaker, rng: np.random.Generator, per_cell: int,
              families: list[str], babble: np.ndarray) -> list[list]:
    rows = []
    for family in families:
        for noise in NOISES:
            for k in range(per_cell):
                _, voice, speed, pitch = _voice(rng, [family])
                text = str(rng.choice(WAKE))
                wake = _trim(say(voice, text, speed, pitch))
                lead = np.zeros(int(rng.uniform(*LEAD_S) * SAMPLE_RATE), np.float32)
                parts, q_start = [lead, wake], -1
                if k % 2:  # every other clip goes on with a question after a short pause
                    # (the pause is all there is between them: the synthesiser's is cut)
                    question = str(rng.choice(QUESTIONS))
                    parts.append(np.zeros(int(rng.uniform(0.05, 0.3) * SAMPLE_RATE),
                                          np.float32))
                    q_start = sum(map(len, parts))
                    parts.append(_trim(say(voice, question, speed, pitch)))
                    text = f"{text}, {question}"
                parts.append(np.zeros(SAMPLE_RATE, np.float32))
                audio = mix(np.concatenate(parts), noise, rng, babble)
                name = f"positives/{len(rows):04d}.wav"
                write_wav(out / name, audio, SAMPLE_RATE)
                rows.append([name, family, voice, noise, len(lead), len(lead) + len(wake),
                             q_start, text, speed, pitch])
    return rows


def _trim(x: np.ndarray, frame: int = 160) -> np.ndarray:
    """The speech alone: the synthesiser's silence before and after cut away (10 ms
    frames within 35 dB of the loudest)."""
    n = len(x) // frame
    rms = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-35 / 20))
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def other_segment(say: Speaker, rng: np.random.Generator, families: list[str], noise: str,
                  babble: np.ndarray) -> tuple[np.ndarray, list[list]]:
    """Five minutes of speech that is not the wake word, with pauses and sounds."""
    n = SEGMENT_S * SAMPLE_RATE
    audio, blocks, pos = np.zeros(n, np.float32), [], int(rng.uniform(0.2, 2) * SAMPLE_RATE)
    while pos < n:
        r = rng.random()
        if r < 0.08:  # background alone for a while
            pos += int(rng.uniform(5, 20) * SAMPLE_RATE)
            continue
        if r < 0.14:  # a short non-speech sound
            x = _sound(rng)
            blocks.append([pos, pos + len(x), "sound", "-"])
        else:
            family, voice, speed, pitch = _voice(rng, families)
            said = [sentence(rng) for _ in range(int(rng.integers(1, 6)))]
            if voice == "hibari":
                x, text = say(voice, " ".join(said), speed, pitch), " ".join(said)
            else:
                breaks = (f'<break time="{int(rng.uniform(150, 1200))}ms"/>' for _ in said)
                text = "".join(s + b for s, b in zip(said, breaks, strict=True))
                x = say(voice, f"<speak>{text}</speak>", speed, pitch)
                text = " ".join(said)
            x = x * (10 ** (rng.uniform(-18, -3) / 20) / (np.abs(x).max() + 1e-9))
            blocks.append([pos, pos + len(x), voice, text])
        x = x[: n - pos]
        audio[pos : pos + len(x)] += x
        pos += len(x) + int(rng.uniform(0.2, 3) * SAMPLE_RATE)
    spec = NOISES[noise]
    kind, snr = (None, 0) if spec is None else spec
    level = QUIET if kind is None else active_rms(audio) / 10 ** (snr / 20)
    audio = np.clip(audio + level * background(kind, n, rng, babble), -1, 1)
    return audio.astype(np.float32), blocks


def _sound(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(rng.uniform(0.1, 1.0) * SAMPLE_RATE)) / SAMPLE_RATE
    kind = rng.integers(3)
    if kind == 0:  # a beep
        x = np.sin(2 * np.pi * rng.uniform(400, 3000) * t)
    elif kind == 1:  # mains hum with harmonics
        f = rng.choice([50, 60])
        x = sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3))
    else:  # a burst (a clap, a door)
        x = rng.standard_normal(len(t)) * np.exp(-t * rng.uniform(10, 60))
    return (x * 10 ** (rng.uniform(-25, -6) / 20) / (np.abs(x).max() + 1e-9)).astype(
        np.float32)


def make_set(folder: Path | None = None, split: str = "holdout", minutes: int | None = None,
             progress=lambda msg: None) -> Path:
    """The set `split` in `folder` (default: `$GLASSES_HOME/wake-set/SPLIT`), made unless
    a same one is there already; returns its folder."""
    if split not in SPLITS:
        raise GlassesError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if shutil.which("espeak-ng") is None:
        raise GlassesError("making the wake-word set needs espeak-ng (apt-get install "
                           "espeak-ng)")
    seed, default_minutes, per_cell = SPLITS[split]
    minutes = default_minutes if minutes is None else minutes
    out = Path(folder) if folder else default_home() / "wake-set" / split
    hibari = _hibari()
    manifest = {"version": SET_VERSION, "split": split, "seed": seed, "minutes": minutes,
                "per_cell": per_cell, "hibari": hibari is not None}
    if (out / "manifest.json").exists() and json.loads(
            (out / "manifest.json").read_text()) == manifest:
        return out
    progress(f"making the wake-word set {out} ({split}: {minutes} min of other speech)")
    families = [f for f in VOICES if f != "hibari" or hibari is not None]
    rng = np.random.default_rng(seed)
    for sub in ("positives", "other"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    (out / "manifest.json").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        say = Speaker(Path(tmp), hibari)
        babble = make_babble(say, np.random.default_rng(seed + 1))
        rows = positives(out, say, rng, per_cell, families, babble)
        _write_tsv(out / "positives.tsv", rows)
        progress(f"  {len(rows)} wake phrases")
        other, names = [], list(NOISES)
        for i in range(-(-minutes * 60 // SEGMENT_S)):
            noise = names[i % len(names)]
            audio, blocks = other_segment(say, rng, families, noise, babble)
            name = f"other/{i:03d}.wav"
            write_wav(out / name, audio, SAMPLE_RATE)
            other += [[name, noise, *b] for b in blocks]
            progress(f"  other speech {(i + 1) * SEGMENT_S // 60}/{minutes} min")
        _write_tsv(out / "other.tsv", other)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def _write_tsv(path: Path, rows: list[list]) -> None:
    path.write_text("".join("\t".join(str(c) for c in row) + "\n" for row in rows))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m glasses.export.wake_set",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, nargs="?", help="where (default: the glasses home)")
    p.add_argument("--split", choices=list(SPLITS), default="holdout")
    p.add_argument("--minutes", type=int, help="of other speech (default 60)")
    args = p.parse_args(argv)
    print(make_set(args.folder, args.split, args.minutes,
                   progress=lambda m: print(m, file=sys.stderr)))


if __name__ == "__main__":
    main()
