"""End of turn by sound and words: Smart Turn v3.2 (pipecat's, BSD-2-Clause) on
onnxruntime, and the words heard so far.

The model hears the last 8 s of the wearer's audio as Whisper's log-mel (80 x 800) and
says how likely the turn is complete: "What colour is..." trailing off into a pause is
not, "What colour is the wall?" is. The VAD stage asks it when a silence begins
(`pipelines/vad_stage.py`): a complete turn ends after a short silence, an incomplete
one waits for the wearer to go on.

The words catch what the sound misses (a flat synthetic voice gives it little to go on):
Whisper tends to finish a fragment ("What colour is" -> "What color is it?"), but a
question that stops on "the", "of", "does" or "..." is not over (`words_unfinished`).

Features as the model was trained on (transformers' WhisperFeatureExtractor with
`do_normalize`): the audio is zero-padded at the start to 8 s, normalised to zero mean
and unit variance over those 8 s, then turned into Whisper's log-mel (`models/mel.py`).
"""

from dataclasses import replace

import numpy as np

from glasses.device.boards import BoardProfile
from glasses.models.mel import SAMPLE_RATE, log_mel_spectrogram
from glasses.models.sessions import create_session
from glasses.models.store import ModelStore

MODEL = "smart-turn"
MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
SECONDS = 8  # the model hears this much audio, the newest
SAMPLES = SECONDS * SAMPLE_RATE
COMPLETE = 0.5  # a probability above this: the turn is complete (the model's own cut)
_VARIANCE_EPS = 1e-7


def turn_features(audio: np.ndarray) -> np.ndarray:
    """(80, 800) float32: the model's input for the newest 8 s of (n,) 16 kHz audio."""
    audio = np.asarray(audio, dtype=np.float32)[-SAMPLES:]
    x = np.zeros(SAMPLES, dtype=np.float32)
    x[SAMPLES - len(audio):] = audio
    x = (x - x.mean()) / np.sqrt(x.var() + _VARIANCE_EPS)
    return log_mel_spectrogram(x, 80)


class SmartTurn:
    """`probability(audio)`: how likely the turn that `audio` ends with is complete."""

    def __init__(self, store: ModelStore, board: BoardProfile):
        # one thread: it judges while speech recognition decodes the same turn on the others;
        # its QDQ pairs in float: fused, on an AVX2 CPU, "What am I" seemed a finished turn
        # (0.987, the whole question 0.936; in float 0.933 and 0.978)
        self._session = create_session(store.path(MODEL, MODEL_FILE), replace(board, threads=1),
                                       float_qdq=True)

    def probability(self, audio: np.ndarray) -> float:
        features = turn_features(audio)[None]
        return float(self._session.run(None, {"input_features": features})[0].reshape(-1)[0])


# last words that leave an English question or request unfinished ("What colour is ...",
# "Remind me to ...", "Which platform does ..."); not "this", "it", "do", "have", nor the
# prepositions questions end on ("What am I looking at?", "What is this for?")
DANGLING = frozenset((
    "a", "an", "the", "of", "to", "than", "as", "and", "or", "but", "nor", "if", "because",
    "my", "your", "his", "her", "our", "their", "its", "whose", "which", "is", "are", "was",
    "were", "does", "did", "can", "could", "would", "should", "will", "shall", "must", "may",
    "might",
))
UNFINISHED_MARKS = ("...", "\u2026", "-", ",", ";", ":")


def words_unfinished(text: str) -> bool:
    """Whether `text` (the turn so far, as heard) stops where a sentence cannot end."""
    text = text.strip()
    if not text or text.endswith(UNFINISHED_MARKS):
        return True
    words = text.rstrip(".?!\"'").lower().replace("\u2019", "'").split()
    return not words or words[-1] in DANGLING
