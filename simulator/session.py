"""A simulated glasses session: camera and microphone through the pipeline, shown or logged.

Camera -> frame buffer; microphone -> VAD -> speech recognition -> look and tell. Each
question is answered about the frame captured while it was asked; partial and final
transcripts and the answer as it streams are shown on the HUD and logged as events.
"""

import threading
from dataclasses import dataclass, field
from pathlib import Path

from device.boards import BoardProfile
from device.camera import Camera
from device.clock import NS_PER_S, now_ns
from device.display import Card, compose, render
from device.microphone import Microphone
from models.asr import AsrOptions
from models.store import ModelStore
from models.vad import VadOptions
from pipelines.asr_stage import AsrStage
from pipelines.frame_buffer import FrameBuffer
from pipelines.frames import AnswerToken, Transcript, Utterance
from pipelines.look_stage import LookStage
from pipelines.runner import Runner, RunnerOptions, RunReport
from pipelines.sources import CameraSource, MicrophoneSource, Mode
from pipelines.vad_stage import VadStage
from simulator.events import EventLog

DEMO = Path(__file__).parent / "demo"
DEMO_VIDEO = DEMO / "demo.mp4"
DEMO_AUDIO = DEMO / "demo.wav"


@dataclass(frozen=True)
class SessionOptions:
    # sources: a camera index, a video file or a folder of stills; a WAV or the live mic
    view: str = str(DEMO_VIDEO)
    audio: str | None = str(DEMO_AUDIO)  # None: the live microphone

    # how it runs
    mode: Mode = Mode.REALTIME
    board: BoardProfile = field(default_factory=BoardProfile.laptop)
    headless: bool = True
    duration_s: float | None = None  # stop after this long (live sources never end)

    # speech
    asr: AsrOptions = field(default_factory=AsrOptions)
    partial_every_ms: int = 500  # partial transcripts while speaking; 0: final only

    # outputs
    events: Path | None = None  # JSON lines


@dataclass
class SessionSummary:
    report: RunReport
    events: list[dict]

    @property
    def errors(self) -> list[str]:
        return self.report.errors


def run_session(options: SessionOptions, store: ModelStore) -> SessionSummary:
    camera = Camera.open(options.view, size=options.board.camera_size)
    try:
        mic = Microphone.from_wav(options.audio) if options.audio else Microphone.live()
    except BaseException:
        camera.close()
        raise
    frames = FrameBuffer(capacity=int(4 * max(camera.fps, 1)))
    runner = Runner(RunnerOptions(mode=options.mode))
    runner.add_chain(CameraSource(camera), [frames])
    vad = VadStage(store, options.board,
                   VadOptions(partial_every_ms=options.partial_every_ms, early_end=True))
    asr = AsrStage(store, options.board, options.asr)
    look = LookStage(store, options.board, frames)
    runner.add_chain(MicrophoneSource(mic), [vad, asr, look])
    log = EventLog(options.events)
    card = _CardState()
    answer: list[str] = []

    def on_item(name: str, item) -> None:
        if isinstance(item, Utterance) and item.final:
            frame = look.choose_frame(item)
            log.add("utterance", start=log.seconds(item.start_ns), end=log.seconds(item.end_ns),
                    seconds=round(item.duration_s, 3),
                    frame=None if frame is None else frame.index)
            card.set(Card(status="thinking"))
        elif isinstance(item, Transcript):
            kind = "final_transcript" if item.final else "partial_transcript"
            log.add(kind, text=item.text, speech_end=log.seconds(item.t_ns))
            card.set(Card(status="thinking" if item.final else "listening", body=item.text))
        elif isinstance(item, AnswerToken):
            since_ms = round((now_ns() - item.t_ns) / 1e6, 1)
            if item.last:
                log.add("answer", text="".join(answer).strip(), speech_end=log.seconds(item.t_ns),
                        since_speech_end_ms=since_ms)
                card.set(Card(status="answer", body="".join(answer).strip()))
                answer.clear()
                return
            if not answer:
                log.add("answer_start", speech_end=log.seconds(item.t_ns),
                        since_speech_end_ms=since_ms)
            answer.append(item.text)
            log.add("answer_token", text=item.text)
            card.set(Card(status="answering", body="".join(answer).strip()))

    runner.observe(on_item)
    runner.start()  # loads the models; media time 0 is when it returns
    log.start_ns = runner.start_ns
    log.add("session_start", view=options.view, audio=options.audio or "microphone",
            mode=options.mode.value, board=options.board.name)
    try:
        if options.headless:
            report = runner.finish(options.duration_s)
        else:
            report = _window(runner, frames, card, options)
    finally:
        log.add("session_end")
        log.close()
    for chain in report.chains:
        if chain.error:
            log.events.append({"type": "error", "source": chain.source, "message": chain.error})
    return SessionSummary(report, log.events)


class _CardState:
    """The card the HUD shows, set from pipeline threads, read by the window loop."""

    def __init__(self):
        self._lock = threading.Lock()
        self._card = Card(status="listening")

    def set(self, card: Card) -> None:
        with self._lock:
            self._card = card

    def get(self) -> Card:
        with self._lock:
            return self._card


def _window(runner: Runner, frames: FrameBuffer, card: _CardState,
            options: SessionOptions) -> RunReport:
    """Show the camera view with the HUD until the media ends or q is pressed."""
    import cv2

    start = runner.start_ns
    period_ms = int(1000 / 15)
    try:
        while not runner.wait(0):
            frame = frames.latest()
            if frame is not None:
                hud = render(options.board.display, card.get())
                cv2.imshow("glasses", compose(frame.image, hud, options.board.display))
            if cv2.waitKey(period_ms) & 0xFF == ord("q"):
                break
            if options.duration_s and now_ns() - start > options.duration_s * NS_PER_S:
                break
    finally:
        runner.stop()
        cv2.destroyAllWindows()
    return runner.report()
