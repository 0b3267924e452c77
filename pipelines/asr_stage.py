"""The speech recognition stage: utterances in, partial and final transcripts out."""

import threading
from collections.abc import Iterator

import onnxruntime as ort

from glasses.device.boards import BoardProfile
from glasses.models.asr import AsrOptions, WhisperOnnx
from glasses.models.store import ModelStore
from glasses.pipelines.agreement import LocalAgreement
from glasses.pipelines.frames import Transcript, Utterance
from glasses.pipelines.stage import Stage
from glasses.pipelines.turn_judge import TurnJudge


class AsrStage(Stage):
    """Transcribes each utterance; partial utterances give partial transcripts.

    While the wearer speaks, every partial hypothesis is pushed to a local-agreement
    policy over tokens; the agreed tokens are forced as the prefix of the next partial
    decode, so work is not repeated. The final transcript, at the VAD endpoint, is a
    fresh decode of the whole utterance; when the VAD sent that same utterance early (at
    the start of the silence that ended it), the decode was done then, during the
    silence, and the final comes as soon as the endpoint is confirmed.
    """

    name = "asr"

    def __init__(self, store: ModelStore, board: BoardProfile, options: AsrOptions = AsrOptions(),
                 judge: TurnJudge | None = None):
        self.store, self.board, self.options = store, board, options
        self.judge = judge  # hears the early words, to judge the end of the turn
        self.agreement = LocalAgreement(n=2)
        self._early: tuple[tuple[int, int], str] | None = None  # (speech bounds, text)
        self._partial: ort.RunOptions | None = None  # of the partial decode running now
        self._lock = threading.Lock()
        self.preempted = 0  # partial decodes ended early

    def open(self) -> None:
        self.asr = WhisperOnnx(self.store, self.board, self.options)

    def cancel(self) -> None:
        self.asr.cancel()
        self.preempt(None)

    def preempt(self, newer) -> None:
        if newer is not None and (not isinstance(newer, Utterance)
                                  or not (newer.final or newer.ending)):
            return
        with self._lock:
            if self._partial is not None:
                self._partial.terminate = True

    def supersedes(self, item: Utterance, newer) -> bool:
        """A partial is pointless once any newer utterance waits; an early end only once
        a newer early end or another utterance's final does (its own final reuses it)."""
        if item.final or not isinstance(newer, Utterance):
            return False
        if not item.ending:
            return True
        return newer.ending or newer.speech_end != item.speech_end

    def process(self, item: Utterance) -> Iterator[Transcript]:
        bounds = (item.speech_start, item.speech_end)
        if item.final:
            self.agreement.reset()
            early, self._early = self._early, None
            if early is not None and early[0] == bounds:  # decoded during the silence
                text = early[1]
            else:
                text = self.asr.transcribe(item.samples).text
            yield Transcript(t_ns=item.t_ns, text=text, final=True, start_ns=item.start_ns,
                             frame=item.frame)
            return
        if item.ending:
            result = self.asr.transcribe(item.samples)
            text = result.text
            self._early = (bounds, text)
            if self.judge is not None:
                self.judge.words(item.speech_end, text, result.end_p)
            yield Transcript(t_ns=item.t_ns, text=text, final=False, start_ns=item.start_ns,
                             frame=item.frame, ending=True)
            return
        run_options = ort.RunOptions()
        with self._lock:
            self._partial = run_options
        try:
            result = self.asr.transcribe(item.samples, prefix=self.agreement.committed,
                                         run_options=run_options)
        except Exception:
            if not run_options.terminate:
                raise
            self.preempted += 1
            return
        finally:
            with self._lock:
                self._partial = None
        self.agreement.push(result.tokens)
        text = self.asr.vocab.decode(self.agreement.tentative()).strip()
        yield Transcript(t_ns=item.t_ns, text=text, final=False, start_ns=item.start_ns)
