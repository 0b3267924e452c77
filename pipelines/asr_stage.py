"""The speech recognition stage: utterances in, partial and final transcripts out."""

from collections.abc import Iterator

from device.boards import BoardProfile
from models.asr import AsrOptions, WhisperOnnx
from models.store import ModelStore
from pipelines.agreement import LocalAgreement
from pipelines.frames import Transcript, Utterance
from pipelines.stage import Stage


class AsrStage(Stage):
    """Transcribes each utterance; partial utterances give partial transcripts.

    While the wearer speaks, every partial hypothesis is pushed to a local-agreement
    policy over tokens; the agreed tokens are forced as the prefix of the next partial
    decode, so work is not repeated. The final transcript, at the VAD endpoint, is a
    fresh decode of the whole utterance.
    """

    name = "asr"

    def __init__(self, store: ModelStore, board: BoardProfile, options: AsrOptions = AsrOptions()):
        self.store, self.board, self.options = store, board, options
        self.agreement = LocalAgreement(n=2)

    def open(self) -> None:
        self.asr = WhisperOnnx(self.store, self.board, self.options)

    def cancel(self) -> None:
        self.asr.cancel()

    def supersedes(self, item: Utterance, newer) -> bool:
        return not item.final and isinstance(newer, Utterance)

    def process(self, item: Utterance) -> Iterator[Transcript]:
        if item.final:
            self.agreement.reset()
            result = self.asr.transcribe(item.samples)
            yield Transcript(t_ns=item.t_ns, text=result.text, final=True)
            return
        result = self.asr.transcribe(item.samples, prefix=self.agreement.committed)
        self.agreement.push(result.tokens)
        text = self.asr.vocab.decode(self.agreement.tentative()).strip()
        yield Transcript(t_ns=item.t_ns, text=text, final=False)
