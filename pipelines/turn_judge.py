"""Where the VAD stage and speech recognition meet to end a turn: by sound and words.

When a silence begins, the VAD stage sends the turn as it would end there (the early
`ending` utterance) and asks the end-of-turn model about its sound (`sound`); speech
recognition transcribes that same utterance and hands its words over (`words`). The VAD
stage reads `decision` on each window of the silence: complete only when the sound says
so and the words do not stop where a sentence cannot end. The words come when the early
decode ends, which the final text waits for in any case, so judging them costs no time.
"""

import threading

from glasses.models.end_of_turn import COMPLETE, words_unfinished

RULES = ("both", "sound", "words")  # "sound" and "words": one signal alone, to measure it


class TurnJudge:
    """Thread-safe: `sound` and `decision` from the VAD stage, `words` from the ASR stage.

    Keys are the stream index where the silence (the speech's end) began."""

    def __init__(self, rule: str = "both"):
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; use {', '.join(RULES)}")
        self.rule = rule
        self._lock = threading.Lock()
        self._sound: dict[int, float] = {}
        self._words: dict[int, str] = {}

    def sound(self, silence: int, probability: float) -> None:
        with self._lock:
            self._sound = {silence: probability}  # only the newest silence matters

    def words(self, silence: int, text: str) -> None:
        with self._lock:
            self._words = {silence: text}

    def decision(self, silence: int, words_due: bool = True) -> bool | None:
        """True: the turn ended at `silence`; False: it goes on; None: not known yet.
        `words_due` False: no words will come for this silence (judge by sound alone)."""
        with self._lock:
            p, text = self._sound.get(silence), self._words.get(silence)
        by_sound = None if p is None else p > COMPLETE
        if self.rule == "sound" or (not words_due and self.rule == "both"):
            return by_sound
        by_words = None if text is None else not words_unfinished(text)
        if self.rule == "words":
            return by_words
        if by_sound is False or by_words is False:
            return False
        return None if by_sound is None or by_words is None else True
