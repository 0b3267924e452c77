"""The look-and-tell stage: final transcripts in, the answer's pieces out.

Each question is answered about the frame captured while it was asked (the sharpest
recent one inside the utterance, `pipelines/frame_choice.py`). The frame is chosen when the
utterance ends (`choose_frame`, called as the VAD emits it), not when its transcript
arrives: by then, in the simulated and offline modes, the camera may have run seconds
ahead and the frame buffer forgotten the question's frames. Answer pieces keep the
transcript's capture time, the end of speech, so `now - t_ns` is the wearer's wait.
"""

import threading
from collections import OrderedDict
from collections.abc import Iterator

from device.boards import BoardProfile
from device.errors import BadInput
from models.deployment import open_vlm
from models.store import ModelStore
from models.vlm import VlmOptions
from pipelines.frame_buffer import FrameBuffer
from pipelines.frame_choice import frame_for
from pipelines.frames import AnswerToken, Transcript, Utterance, VideoFrame
from pipelines.stage import Stage

NO_VIEW = "I can't tell: the camera is off."
PENDING = 8  # frames chosen for questions not yet answered, kept at most


class LookStage(Stage):
    name = "look"

    def __init__(self, store: ModelStore, board: BoardProfile, frames: FrameBuffer,
                 options: VlmOptions | None = None):
        self.store, self.board, self.frames = store, board, frames
        self.options = options or VlmOptions()
        self._chosen: OrderedDict[int, VideoFrame | None] = OrderedDict()  # end_ns -> frame
        self._lock = threading.Lock()

    def choose_frame(self, utterance: Utterance) -> VideoFrame | None:
        """Pick the frame for a final utterance now, while the buffer still holds it."""
        frame = frame_for(self.frames, utterance.start_ns, utterance.end_ns)
        with self._lock:
            self._chosen[utterance.end_ns] = frame
            while len(self._chosen) > PENDING:
                self._chosen.popitem(last=False)
        return frame

    def open(self) -> None:
        self.vlm = open_vlm(self.store, self.board, self.options)
        self.vlm.warm_up()

    def cancel(self) -> None:
        self.vlm.cancel()

    def process(self, item: Transcript) -> Iterator[AnswerToken]:
        if not item.final or not item.text.strip():
            return
        with self._lock:
            chosen = item.t_ns in self._chosen
            frame = self._chosen.pop(item.t_ns, None)
        if not chosen:
            frame = frame_for(self.frames, item.start_ns, item.t_ns)
        if frame is None:
            yield AnswerToken(item.t_ns, NO_VIEW, last=False)
        else:
            try:
                for piece in self.vlm.stream(frame.image, item.text):
                    yield AnswerToken(item.t_ns, piece, last=False)
            except BadInput as e:  # a question the models refuse: say why, keep going
                yield AnswerToken(item.t_ns, f"Sorry: {e}.", last=False)
        yield AnswerToken(item.t_ns, "", last=True)
