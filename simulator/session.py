"""A simulated glasses session: the assistant (`pipelines/assistant.py`) on its sources,
shown in a window or headless, recorded, logged, spoken, and steered over a control socket.

Everything here watches the assistant's events: the HUD follows them, the event log writes
them as JSON lines, the voice speaks each answer sentence by sentence and stops when the
wearer talks over it (`simulator/speech_out.py`); the presenting loop draws the view with
the HUD at the display rate (into a window, a recording, or, headless, only counted) and
says when an answer first reached the display. With `echo` the voice is mixed into what the
microphone hears (`simulator/echo_mix.py`), and the echo guard (`pipelines/echo.py`) in
front of the VAD takes it out again.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from glasses.device.boards import BoardProfile
from glasses.device.clock import now_ns
from glasses.device.errors import BadInput
from glasses.models.asr import AsrOptions
from glasses.models.people import People
from glasses.models.store import ModelStore
from glasses.models.vlm import VlmOptions
from glasses.pipelines import events as ev
from glasses.pipelines.assistant import Assistant, AssistantOptions
from glasses.pipelines.frames import AudioChunk
from glasses.pipelines.memory import RETENTION_S, MemoryUnavailable
from glasses.pipelines.runner import RunReport
from glasses.pipelines.sources import Mode
from glasses.pipelines.turns import Turn, TurnLog
from glasses.simulator.events import EventLog
from glasses.simulator.hud import NOTE_S, HudState
from glasses.simulator.present import Presenter, PresentStats
from glasses.simulator.recorder import Recorder

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
    endpoint: str = "turn"  # how a question's end is found (`AssistantOptions.endpoint`)
    wake: bool = False  # only questions after the wake word are heard
    push_to_talk: bool = False  # the mic is heard only after space (window); else always-on

    # outputs and control
    events: Path | None = None  # JSON lines
    record: Path | None = None  # the frames shown, as a video (and a WAV beside it)
    speak: bool = False  # answers spoken by the bundled voice, sentence by sentence
    barge_in: bool = True  # with speak: the wearer speaking stops the voice
    echo: float | None = None  # with speak, realtime: the voice heard back at this gain
    echo_guard: bool = True  # with speak: the voice is taken out of what the VAD hears
    overlay: bool = False  # the latency overlay, from the start
    control: Path | None = None  # a Unix socket taking commands, sending events
    companion: bool = False  # serve the companion page (127.0.0.1, random port and token)

    # memory
    memory: bool = True  # moments noted and recalled ($GLASSES_MEMORY, else the glasses home)
    retention_s: float = RETENTION_S
    memory_path: str | None = None  # None: $GLASSES_MEMORY, else memory.db in the glasses home

    def assistant(self) -> AssistantOptions:
        return AssistantOptions(view=self.view, audio=self.audio, mode=self.mode,
                                board=self.board, asr=self.asr, vlm=self.vlm,
                                partial_every_ms=self.partial_every_ms,
                                endpoint=self.endpoint, wake=self.wake,
                                push_to_talk=self.push_to_talk,
                                memory=self.memory,
                                retention_s=self.retention_s, memory_path=self.memory_path)


@dataclass
class SessionSummary:
    report: RunReport
    events: list[dict]  # times in seconds since `start_ns`
    turns: list[Turn]
    display: PresentStats
    start_ns: int  # media time 0, monotonic ns
    voice: dict | None = None  # with speak: what it played, the echo guard's findings

    @property
    def errors(self) -> list[str]:
        return self.report.errors


def run_session(options: SessionOptions, store: ModelStore,
                progress: Callable[[str], None] | None = None) -> SessionSummary:
    """Run the session to its end; `progress` hears what the wearer should know at once
    (the companion page's address)."""
    _check(options)
    size = options.board.camera_size
    recorder = (Recorder(options.record, options.display_fps, size,
                         People(store, options.board).blur)
                if options.record is not None else None)
    speech, guard, stages = _speech_out(options, recorder)
    assistant = Assistant(options.assistant(), store, audio_stages=stages)
    log = EventLog(options.events)
    hud = HudState()
    hud.update(overlay=options.overlay,
               status="push space to talk" if options.push_to_talk else "listening")
    assistant.subscribe(log.add_event)
    turns = TurnLog()
    assistant.subscribe(turns)
    if speech is not None:
        speech.publish = assistant.publish
        assistant.subscribe(speech.on_event)  # before the display: it knows of a barge-in
        if speech.note:
            assistant.publish(ev.Notice(now_ns(), speech.note))
    assistant.subscribe(lambda e: _show(e, hud, speech))
    if recorder is not None:
        def record_audio(name: str, item) -> None:
            if isinstance(item, AudioChunk) and name == assistant.mic_source.name:
                recorder.add_audio(item.samples, (item.t_ns - log.start_ns) / 1e9)

        assistant.runner.observe(record_audio)
    control = companion = None
    try:
        if options.companion:
            companion = _open_companion(options, store)
            assistant.subscribe(companion.on_event)
            if progress is not None:
                progress(f"companion page: {companion.url} (this machine only)")
        assistant.start()  # loads the models; media time 0 is when it returns
        if speech is not None:
            speech.start_ns = assistant.start_ns
        if options.control is not None:
            from glasses.pipelines.control import ControlServer

            control = ControlServer(assistant, options.control, log.start_ns)
        presenter = Presenter(assistant, hud, options.board.display, size,
                              options.display_fps, window=not options.headless,
                              recorder=recorder, push_to_talk=options.push_to_talk)
        try:
            presenter.run(options.duration_s)
        finally:
            report = assistant.stop()  # stops what is still running (q, duration, Ctrl-C)
    finally:
        if control is not None:
            control.close()
        if companion is not None:
            companion.close()
        if speech is not None:
            speech.close()
        if recorder is not None:
            recorder.close()
        log.close()
    return SessionSummary(report, log.events, turns.turns, presenter.stats, assistant.start_ns,
                          _voice(speech, guard, options) if speech is not None else None)


def _check(options: SessionOptions) -> None:
    if options.echo is not None and not options.speak:
        raise BadInput("--echo mixes the spoken answers into the microphone: it needs --speak")
    if options.echo is not None and options.mode is not Mode.REALTIME:
        raise BadInput("--echo plays the voice back as it is spoken: it needs --mode realtime")
    if options.echo is not None and not 0 < options.echo <= 4:
        raise BadInput(f"--echo GAIN must be above 0 and at most 4, got {options.echo}")


def _speech_out(options: SessionOptions, recorder: Recorder | None):
    """The voice (with speak), the echo guard, and the stages in front of the VAD: the
    echo mixed in (`--echo`), then the guard (when an echo can reach the microphone)."""
    if not options.speak:
        return None, None, []
    from glasses.pipelines.echo import EchoGuard
    from glasses.simulator.echo_mix import EchoMixer
    from glasses.simulator.speech_out import SpeechOut  # loads the voice only when asked

    speech = SpeechOut(None, recorder, barge_in=options.barge_in)
    stages, guard = [], None
    if options.echo is not None:
        stages.append(EchoMixer(speech.playback, options.echo))
    if options.echo_guard and (options.echo is not None or speech.speaker is not None):
        guard = EchoGuard(speech.playback)
        stages.append(guard)
    return speech, guard, stages


def _voice(speech, guard, options: SessionOptions) -> dict:
    """What the voice did: sentences played, stops for the wearer, the echo guard's
    findings (None without one)."""
    return {"sentences": speech.sentences,
            "stops": [{"after_ms": s.after_ms, "cut_s": s.cut_s, "text": s.text}
                      for s in speech.stops],
            "echo": options.echo,
            "guard": None if guard is None else {
                "delay_ms": guard.delay_ms, "silenced": guard.silenced,
                "cleaned": guard.cleaned}}


def _open_companion(options: SessionOptions, store: ModelStore):
    """The companion page for this session; memory left out when it is off or unusable (the
    session's own notice says why)."""
    from glasses.pipelines.companion import Companion, CompanionOptions

    path = Path(options.memory_path) if options.memory_path else None
    o = CompanionOptions(memory=options.memory, memory_path=path)
    try:
        return Companion(o, store, options.board)
    except MemoryUnavailable:
        return Companion(replace(o, memory=False), store, options.board)


def _show(e: ev.Event, hud: HudState, speech) -> None:
    """The HUD follows the assistant's events (and `speech`, the voice if any, says
    whether the wearer is talking over an answer: its card then stays)."""
    match e:
        case ev.SpeechStarted():
            if speech is not None and speech.barged_in:  # the voice stopped; the card stays
                hud.update(status="listening")
        case ev.UtteranceHeard():
            hud.update(status="thinking")
        case ev.PartialTranscript() if speech is not None and speech.barged_in:
            pass  # talking over the answer: its card stays until the question is heard
        case ev.PartialTranscript() | ev.FinalTranscript():
            hud.update(status="thinking" if isinstance(e, ev.FinalTranscript) else "listening",
                       question=e.text, answer="", answer_done_ns=0)
        case ev.AnswerStarted():
            hud.update(turn=hud.get().turn + 1, speech_end_ns=e.speech_end_ns)
        case ev.AnswerPiece():
            hud.update(status="answering", answer=(hud.get().answer + e.text).strip())
        case ev.Answer():
            until = e.card.until_ns if e.card is not None and e.card.until_ns else 0
            hud.update(status="answer", answer=e.text, answer_done_ns=now_ns(),
                       countdown_ns=until)
        case ev.Announcement():
            title = e.card.title if e.card is not None else e.skill
            hud.update(status="answer", question=title, answer=e.text,
                       answer_done_ns=now_ns(), countdown_ns=0)
        case ev.Muted():
            hud.update(muted=e.muted)
        case ev.CameraSwitched():
            hud.update(camera_on=e.on)
        case ev.PushToTalk():
            hud.update(status="listening" if e.talking else "push space to talk")
        case ev.DeviceError():
            hud.update(message=f"{e.device} lost",
                       camera_on=hud.get().camera_on and e.device != "camera",
                       lost=tuple(d for d in hud.get().lost if d != e.device))
        case ev.DeviceLost():
            hud.update(lost=tuple(sorted({*hud.get().lost, e.device})))
        case ev.DeviceBack():
            hud.update(lost=tuple(d for d in hud.get().lost if d != e.device),
                       note=f"{e.device} back", note_until_ns=now_ns() + int(NOTE_S * 1e9))
