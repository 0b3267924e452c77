"""Turn taking measured on a pause set (`export/pause_set.py`): is a question with a pause
inside heard whole, and how long after a complete question's end does its turn end?

Each clip is streamed through the assistant's own VAD stage (32 ms blocks, as the
microphone gives them) with the endpoint under test, and every final utterance is
transcribed. A paused question is heard whole when exactly one utterance came and it
holds the speech after the pause (its end lies past the pause); the words heard are
reported beside it, and their word error rate on the whole questions. The endpoint delay
of a whole question is the audio heard after its speech ended before its final utterance
went out: stream time, so the same on any machine.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from glasses.device.audio import SAMPLE_RATE, load_audio
from glasses.device.boards import BoardProfile
from glasses.device.clock import NS_PER_S
from glasses.evaluation.cases import read_table
from glasses.evaluation.scoring import word_error_rate
from glasses.models.asr import AsrOptions, WhisperOnnx
from glasses.models.store import ModelStore
from glasses.models.vad import VadOptions
from glasses.pipelines.frames import AudioChunk, Utterance
from glasses.pipelines.turn_judge import TurnJudge
from glasses.pipelines.vad_stage import VadStage

BLOCK = 512  # samples per microphone block (32 ms)

Progress = Callable[[str], None]


@dataclass
class ClipResult:
    file: str
    kind: str  # paused | whole
    voice: str
    text: str  # the question
    heard: list[str]  # each final utterance's transcript
    whole: bool  # one utterance, the whole question
    delay_ms: float | None  # whole clips: end of speech -> final utterance, stream time


def _stream(vad: VadStage, whisper: WhisperOnnx, audio: np.ndarray
            ) -> list[tuple[Utterance, int]]:
    """The final utterances of `audio`, each with the stream index it was sent at. Each
    early (`ending`) utterance is transcribed at once and its words handed to the judge,
    as the ASR stage does (here without its delay)."""
    vad.open()
    out = []
    for offset in range(0, len(audio), BLOCK):
        chunk = AudioChunk(t_ns=offset * NS_PER_S // SAMPLE_RATE,
                           samples=audio[offset:offset + BLOCK],
                           offset=offset)
        for u in vad.process(chunk):
            if u.ending:
                early = whisper.transcribe(u.samples)
                vad.judge.words(u.speech_end, early.text, early.end_p)
            elif u.final:
                out.append((u, offset + len(chunk.samples)))
    return out + [(u, len(audio)) for u in vad.flush() if u.final]


def evaluate_turns(folder: Path, endpoint: str, store: ModelStore, board: BoardProfile,
                   asr: AsrOptions = AsrOptions(), rule: str = "both",
                   progress: Progress | None = None) -> dict:
    """Run every clip of the set in `folder` with `endpoint` ("turn" or "vad"); `rule`:
    what judges a turn's end (`pipelines/turn_judge.py`)."""
    rows = read_table(folder, "truth.tsv", "a pause set is *.wav plus truth.tsv, made by "
                      "python -m glasses.export.pause_set", 9)
    vad = VadStage(store, board, VadOptions(endpoint=endpoint, early_end=True),
                   judge=TurnJudge(rule))
    whisper = WhisperOnnx(store, board, asr)
    results = []
    for path, (name, kind, voice, first, rest, start, _p0, p1, end, *_) in rows:
        audio = load_audio(path)
        utterances = _stream(vad, whisper, audio)
        heard = [whisper.transcribe(u.samples).text for u, _ in utterances]
        one = len(utterances) == 1 and utterances[0][0].speech_end > int(p1 or start)
        delay = None
        if kind == "whole" and utterances:
            delay = round((utterances[-1][1] - int(end)) * 1000 / SAMPLE_RATE, 1)
        results.append(ClipResult(name, kind, voice, f"{first} {rest}", heard, one, delay))
        if progress:
            progress(f"  {name} {'whole' if one else 'CUT  '} {delay or '':>7} {' | '.join(heard)}")
    return summarise(results, endpoint)


def summarise(results: list[ClipResult], endpoint: str) -> dict:
    paused = [r for r in results if r.kind == "paused"]
    whole = [r for r in results if r.kind == "whole"]
    delays = [r.delay_ms for r in whole if r.delay_ms is not None]
    return {
        "endpoint": endpoint,
        "paused": len(paused),
        "paused_heard_whole": round(sum(r.whole for r in paused) / max(len(paused), 1), 3),
        "whole": len(whole),
        "whole_heard_whole": round(sum(r.whole for r in whole) / max(len(whole), 1), 3),
        "whole_delay_ms_p50": float(np.median(delays)) if delays else None,
        "whole_delay_ms_p90": float(np.percentile(delays, 90)) if delays else None,
        "wer_whole": round(word_error_rate([r.text for r in whole],
                                           [" ".join(r.heard) for r in whole]), 3),
        "clips": [asdict(r) for r in results],
    }
