"""Where the VAD stage and speech recognition meet to end a turn: by sound and words.

When a silence begins, the VAD stage sends the turn as it would end there (the early
`ending` utterance) and asks the end-of-turn model about its sound (`sound`); speech
recognition transcribes that same utterance and hands its words over (`words`), with how
sure its decoder was that the sentence ends there (`AsrResult.end_p`). The VAD stage reads
`decision` on each window of the silence. Words that stop where a sentence cannot end
("What colour is the") never end a turn; otherwise the decoder's certainty decides with
the sound: sure (`SURE_END`) ends it whatever the sound says, likely (`LIKELY_END`) ends
it when the sound agrees, less waits for the wearer to go on. Whisper finishes a fragment
("Can you tell me" -> "Can you tell me?") but is less sure of the mark it ends it with.
On the pause set (`glasses eval turns`) this rule heard 60% of paused questions whole
against 47% by sound and words alone, and ended more complete ones at once (90% against
70%; README, "Turn taking"). The words come when the early decode ends, which the final
text waits for in any case, so judging them costs no time.
"""

import threading

from glasses.models.end_of_turn import COMPLETE, words_unfinished

SURE_END = 0.8  # the decoder's probability of a sentence end at which the words decide alone
LIKELY_END = 0.6  # at or above this (and below SURE_END) the sound decides; below, it waits
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
        self._words: dict[int, tuple[str, float | None]] = {}

    def sound(self, silence: int, probability: float) -> None:
        with self._lock:
            self._sound = {silence: probability}  # only the newest silence matters

    def words(self, silence: int, text: str, end_p: float | None) -> None:
        """The early decode's `text` and `end_p` (`AsrResult`; None: no token decoded)."""
        with self._lock:
            self._words = {silence: (text, end_p)}

    def _by_words(self, silence: int) -> str | None:
        """What the words say of `silence`: "no" (unfinished, or the decoder unsure of
        the end), "likely", "sure"; None while they are still coming."""
        with self._lock:
            words = self._words.get(silence)
        if words is None:
            return None
        text, end_p = words
        if words_unfinished(text) or end_p is None or end_p < LIKELY_END:
            return "no"
        return "sure" if end_p >= SURE_END else "likely"

    def _by_sound_alone(self, words_due: bool) -> bool:
        return self.rule == "sound" or (not words_due and self.rule == "both")

    def wants_sound(self, silence: int, words_due: bool = True) -> bool:
        """Whether the end-of-turn model must hear `silence`: words that decide alone
        (sure, unlikely or unfinished) spare its call (~100-180 ms on the VAD's thread,
        which the final text waited for), and while they are still coming it waits."""
        if self._by_sound_alone(words_due):
            return True
        return self.rule != "words" and self._by_words(silence) == "likely"

    def decision(self, silence: int, words_due: bool = True) -> bool | None:
        """True: the turn ended at `silence`; False: it goes on; None: not known yet.
        `words_due` False: no words will come for this silence (judge by sound alone)."""
        with self._lock:
            p = self._sound.get(silence)
        by_sound = None if p is None else p > COMPLETE
        if self._by_sound_alone(words_due):
            return by_sound
        words = self._by_words(silence)
        if words is None:
            return None
        if words == "no":
            return False
        return True if self.rule == "words" or words == "sure" else by_sound
