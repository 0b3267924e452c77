"""A simulated glasses session: camera and microphone through the pipeline, shown or logged.

camera -> camera gate -> frame buffer
microphone -> mic gate -> VAD -> speech recognition -> look and tell (answer pieces)

Each question is answered about the frame captured while it was asked; partial and final
transcripts and the answer as it streams go to the HUD and the event log. A presenting
loop draws the view with the HUD at the display rate, into a window, a recording, or
(headless) only counted; answers may be spoken.
"""

from dataclasses import dataclass, field
from pathlib import Path

from device.boards import BoardProfile
from device.camera import Camera
from device.clock import now_ns
from device.microphone import Microphone
from models.asr import AsrOptions
from models.store import ModelStore
from models.vad import VadOptions
from models.vlm import VlmOptions
from pipelines.asr_stage import AsrStage
from pipelines.frame_buffer import FrameBuffer
from pipelines.frames import AnswerToken, Transcript, Utterance
from pipelines.gate import Gate
from pipelines.look_stage import LookStage
from pipelines.runner import Runner, RunnerOptions, RunReport
from pipelines.sources import CameraSource, MicrophoneSource, Mode
from pipelines.vad_stage import VadStage
from simulator.events import EventLog
from simulator.hud import HudState
from simulator.present import Controls, Presenter, PresentStats
from simulator.recorder import Recorder

DEMO = Path(__file__).parent / "demo"
DEMO_SCENARIO = DEMO / "demo.toml"
DEMO_VIDEO = DEMO / "demo.mp4"
DEMO_AUDIO = DEMO / "demo.wav"


@dataclass(frozen=True)
class SessionOptions:
    # sources: a camera index, a video file or a folder of stills; a WAV or the live mic
    view: str
    audio: str | None  # None: the live microphone

    # how it runs
    mode: Mode = Mode.REALTIME
    board: BoardProfile = field(default_factory=BoardProfile.laptop)
    headless: bool = True
    duration_s: float | None = None  # stop after this long (live sources never end)
    display_fps: float = 15.0  # frames drawn per second

    # models
    asr: AsrOptions = field(default_factory=AsrOptions)
    vlm: VlmOptions = field(default_factory=VlmOptions)
    partial_every_ms: int = 500  # partial transcripts while speaking; 0: final only
    push_to_talk: bool = False  # the mic is heard only after space (window); else always-on

    # outputs
    events: Path | None = None  # JSON lines
    record: Path | None = None  # the frames shown, as a video (and a WAV beside it)
    speak: bool = False  # answers spoken by the bundled voice
    overlay: bool = False  # the latency overlay, from the start


@dataclass
class SessionSummary:
    report: RunReport
    events: list[dict]  # times in seconds since `start_ns`
    display: PresentStats
    start_ns: int  # media time 0, monotonic ns

    @property
    def errors(self) -> list[str]:
        return self.report.errors


def run_session(options: SessionOptions, store: ModelStore) -> SessionSummary:
    size = options.board.camera_size
    camera = Camera.open(options.view, size=size)
    try:
        mic = Microphone.from_wav(options.audio) if options.audio else Microphone.live()
    except BaseException:
        camera.close()
        raise
    recorder = (Recorder(options.record, options.display_fps, size)
                if options.record is not None else None)
    frames = FrameBuffer(capacity=int(4 * max(camera.fps, 1)))
    controls = Controls(Gate("mic-gate", is_open=not options.push_to_talk),
                        Gate("camera-gate"), options.push_to_talk)
    runner = Runner(RunnerOptions(mode=options.mode))
    camera_chain = runner.add_chain(CameraSource(camera), [controls.camera, frames])
    vad = VadStage(store, options.board,
                   VadOptions(partial_every_ms=options.partial_every_ms, early_end=True))
    asr = AsrStage(store, options.board, options.asr)
    look = LookStage(store, options.board, frames, options.vlm)
    mic_source = MicrophoneSource(mic)
    mic_chain = runner.add_chain(mic_source, [controls.mic, vad, asr, look])
    log = EventLog(options.events)
    hud = HudState()
    if options.push_to_talk:
        hud.update(status="push space to talk")
    hud.update(overlay=options.overlay)
    speech = None
    if options.speak:
        from simulator.speech_out import SpeechOut  # loads the voice only when asked

        speech = SpeechOut(log, recorder)
    answer: list[str] = []

    def on_item(name: str, item) -> None:
        if name == mic_source.name and recorder is not None:
            recorder.add_audio(item.samples, (item.t_ns - log.start_ns) / 1e9)
        elif isinstance(item, Utterance) and item.final:
            frame = look.choose_frame(item)
            log.add("utterance", start=log.seconds(item.start_ns), end=log.seconds(item.end_ns),
                    seconds=round(item.duration_s, 3),
                    frame=None if frame is None else frame.index)
            hud.update(status="thinking")
        elif isinstance(item, Transcript):
            kind = "final_transcript" if item.final else "partial_transcript"
            log.add(kind, text=item.text, speech_end=log.seconds(item.t_ns))
            hud.update(status="thinking" if item.final else "listening", question=item.text,
                       answer="", answer_done_ns=0)
        elif isinstance(item, AnswerToken):
            _on_answer(item, answer, hud, log, speech)

    runner.observe(on_item)
    runner.start()  # loads the models; media time 0 is when it returns
    log.start_ns = runner.start_ns
    log.add("session_start", view=options.view, audio=options.audio or "microphone",
            mode=options.mode.value, board=options.board.name,
            window=not options.headless, record=str(options.record or ""))
    presenter = Presenter(runner, frames, hud, log, options.board.display, size,
                          options.display_fps, controls, [camera_chain, mic_chain],
                          window=not options.headless, recorder=recorder)
    try:
        try:
            presenter.run(options.duration_s)
        finally:
            report = runner.finish(0)  # stops what is still running (q, duration, Ctrl-C)
    finally:
        if speech is not None:
            speech.close()
        if recorder is not None:
            recorder.close()
        log.add("session_end", display_frames=presenter.stats.frames)
        log.close()
    for chain in report.chains:
        if chain.error:
            log.events.append({"type": "error", "source": chain.source, "message": chain.error})
    return SessionSummary(report, log.events, presenter.stats, runner.start_ns)


def _on_answer(item: AnswerToken, answer: list[str], hud: HudState, log: EventLog,
               speech) -> None:
    since_ms = round((now_ns() - item.t_ns) / 1e6, 1)
    if item.last:
        text = "".join(answer).strip()
        log.add("answer", text=text, speech_end=log.seconds(item.t_ns),
                since_speech_end_ms=since_ms)
        hud.update(status="answer", answer=text, answer_done_ns=now_ns())
        if speech is not None and text:
            speech.say(text, item.t_ns)
        answer.clear()
        return
    if not answer:
        log.add("answer_start", speech_end=log.seconds(item.t_ns), since_speech_end_ms=since_ms)
        hud.update(turn=hud.get().turn + 1, speech_end_ns=item.t_ns)
    answer.append(item.text)
    log.add("answer_token", text=item.text)
    hud.update(status="answering", answer="".join(answer).strip())
