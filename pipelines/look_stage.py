"""The look-and-tell stage: questions in (final transcripts carrying their frame), the
answer's pieces out.

Each question is answered about its own frame: for a spoken one, the sharpest recent
frame captured while it was asked (chosen in the stream by `FrameChoice`); for one asked
as text, the frame of the moment it was asked. Answer pieces keep the question's stamp
(the end of speech), so `now - t_ns` is the wearer's wait.
"""

from collections.abc import Iterator

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.models.deployment import open_vlm
from glasses.models.store import ModelStore
from glasses.models.vlm import VlmOptions
from glasses.pipelines.frames import AnswerToken, Transcript
from glasses.pipelines.stage import Stage

NO_VIEW = "I can't tell: the camera is off."


class LookStage(Stage):
    name = "look"

    def __init__(self, store: ModelStore, board: BoardProfile, options: VlmOptions | None = None):
        self.store, self.board = store, board
        self.options = options or VlmOptions()

    def open(self) -> None:
        self.vlm = open_vlm(self.store, self.board, self.options)
        self.vlm.warm_up()

    def cancel(self) -> None:
        self.vlm.cancel()

    def process(self, item: Transcript) -> Iterator[AnswerToken]:
        if not item.final or not item.text.strip():
            return
        if item.frame is None:
            yield AnswerToken(item.t_ns, NO_VIEW, last=False)
        else:
            try:
                for piece in self.vlm.stream(item.frame.image, item.text):
                    yield AnswerToken(item.t_ns, piece, last=False)
            except BadInput as e:  # a question the models refuse: say why, keep going
                yield AnswerToken(item.t_ns, f"Sorry: {e}.", last=False)
        yield AnswerToken(item.t_ns, "", last=True)
