"""The assistant: its graph assembled in one place, and the public Python API.

    camera -> camera gate -> glance (salient moments into memory) -> frame buffer
    microphone -> mic gate -> VAD -> frame choice -> speech recognition -> requests
    requests (heard, or asked as text) + conversation + memory -> skills -> answer pieces

`Assistant` starts it on sources (a camera index, a video file or a folder of stills; a
WAV or the live microphone), publishes typed events (`pipelines/events.py`) to its
subscribers, and takes the wearer's switches: mute, camera off, push-to-talk, a question
asked as text. `glasses simulate` and `glasses run` draw and record on top of it.

    with Assistant(AssistantOptions(view="demo.mp4", audio="demo.wav")) as a:
        a.subscribe(lambda e: print(e.text), Answer)
        a.wait()

Subscribers are called on the pipeline's threads: they must be quick.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from glasses.device.boards import BoardProfile
from glasses.device.camera import Camera
from glasses.device.clock import NS_PER_S, now_ns
from glasses.device.errors import BadInput
from glasses.device.memory import one_heap_arena
from glasses.device.microphone import Microphone
from glasses.models.asr import AsrOptions
from glasses.models.intent import Intent
from glasses.models.store import ModelStore
from glasses.models.vad import VadOptions
from glasses.models.vlm import VlmOptions, check_question
from glasses.pipelines.asr_stage import AsrStage
from glasses.pipelines.events import (
    Announcement,
    Answer,
    AnswerPiece,
    AnswerStarted,
    CameraSwitched,
    DeviceBack,
    DeviceError,
    DeviceLost,
    Event,
    EventBus,
    FinalTranscript,
    Muted,
    Notice,
    PartialTranscript,
    PushToTalk,
    SessionEnded,
    SessionStarted,
    SpeechStarted,
    UtteranceHeard,
)
from glasses.pipelines.frame_buffer import FrameBuffer
from glasses.pipelines.frame_choice import FrameChoice, frame_for
from glasses.pipelines.frames import AnswerToken, Transcript, Utterance
from glasses.pipelines.gate import Gate
from glasses.pipelines.glance import Glance
from glasses.pipelines.memory import RETENTION_S, Memory, MemoryUnavailable
from glasses.pipelines.remembering import Remembering
from glasses.pipelines.requests import Requests, RequestSource, ToRequests
from glasses.pipelines.runner import ChainStats, Runner, RunnerOptions, RunReport
from glasses.pipelines.skill_stage import SkillStage
from glasses.pipelines.skills import discover
from glasses.pipelines.sources import CameraSource, MicrophoneSource, Mode
from glasses.pipelines.stage import Stage
from glasses.pipelines.vad_stage import VadStage

log = logging.getLogger(__name__)

# the camera frames kept: 120 frames were 8 s and 110 MB at 15 frames a second, a fifth of
# the rpi5 profile's peak; a question's frame is among the last 8 frames it was asked over
FRAME_BUFFER_S = 4.0
TEXT_FRAME_NS = NS_PER_S  # a question asked as text is about the frames of the last second
HEARD_NS = NS_PER_S  # no glance this soon after speech was heard: speech recognition first


@dataclass(frozen=True)
class AssistantOptions:
    # sources: a camera index ("0"), a video file or a folder of stills; a WAV, or None
    # for the live microphone
    view: str
    audio: str | None = None

    # how it runs
    mode: Mode = Mode.REALTIME
    board: BoardProfile = field(default_factory=BoardProfile.laptop)

    # models
    asr: AsrOptions = field(default_factory=AsrOptions)
    vlm: VlmOptions = field(default_factory=VlmOptions)
    partial_every_ms: int = 500  # partial transcripts while speaking; 0: final only
    endpoint: str = "turn"  # how a question's end is found: "turn" (the end-of-turn model
    # judges each pause: a complete question ends at once, an incomplete one waits) or "vad"
    # (any 300 ms of silence ends it; needs no end-of-turn model)

    wake: bool = False  # only a question after the wake word ("okay nabu") is heard

    # the wearer's switches at the start
    push_to_talk: bool = False  # the mic is heard only between talk_start and talk_stop
    muted: bool = False
    camera_on: bool = True

    # memory (`pipelines/memory.py`): moments seen and the wearer's things
    memory: bool = True  # False: nothing is noted or recalled (`--no-memory`)
    memory_path: str | None = None  # None: $GLASSES_MEMORY, else memory.db in the glasses home
    retention_s: float = RETENTION_S  # moments older than this are dropped


class Assistant:
    """The on-device assistant on its sources; see the module's docstring."""

    def __init__(self, options: AssistantOptions, store: ModelStore | None = None,
                 audio_stages: Sequence[Stage] = ()):
        """`audio_stages` go between the mic gate and the VAD, in order (the simulator's
        echo and the echo guard, `pipelines/echo.py`)."""
        self.options = options
        self.audio_stages = list(audio_stages)
        self.store = store or ModelStore()
        self.bus = EventBus()
        self.frames = FrameBuffer(capacity=round(FRAME_BUFFER_S * options.board.camera_fps))
        self.mic_gate = Gate("mic-gate", is_open=not (options.push_to_talk or options.muted))
        self.camera_gate = Gate("camera-gate", is_open=options.camera_on)
        self._muted, self._talking = options.muted, False
        self.runner = Runner(RunnerOptions(mode=options.mode))
        self.requests = Requests()
        self.chains: list[ChainStats] = []
        self.report: RunReport | None = None
        self._answer: list[str] = []
        self._card = None
        self._early_notices: list[str] = []  # from before the session started
        self.memory: Remembering | None = None
        self._heard_ns = 0  # when speech was last heard (an utterance, partial or final)
        self._failed: set[str] = set()
        self._started = self._stopped = False
        self._lock = threading.Lock()

    # -- events --------------------------------------------------------------------

    def subscribe(self, subscriber: Callable[[Event], None], *kinds: type[Event]
                  ) -> Callable[[], None]:
        """Call `subscriber(event)` for each event (or only those of `kinds`), from the
        pipeline's threads; returns the function that unsubscribes."""
        return self.bus.subscribe(subscriber, *kinds)

    def publish(self, event: Event) -> None:
        """Add an event of one's own (a display that drew an answer, a voice that spoke)."""
        self.bus.publish(event)

    @property
    def start_ns(self) -> int:
        """When streaming began (media time 0); 0 before `start`."""
        return self.runner.start_ns

    # -- lifecycle -----------------------------------------------------------------

    def start(self, camera: Camera | None = None, microphone: Microphone | None = None) -> None:
        """Open the sources (or take devices already open), load the models (seconds),
        start streaming. The process's threads then share one heap arena
        (`one_heap_arena`: a third less peak memory)."""
        if self._started:
            raise BadInput("this assistant has already been started")
        self._started = True
        one_heap_arena()
        o = self.options
        camera = camera or Camera.open(o.view, size=o.board.camera_size)
        try:
            mic = microphone or (Microphone.from_wav(o.audio) if o.audio else Microphone.live())
        except BaseException:
            camera.close()
            raise
        self.camera, self.microphone = camera, mic
        self.frames.resize(round(FRAME_BUFFER_S * max(camera.fps, o.board.camera_fps)))
        vad_options = VadOptions(partial_every_ms=o.partial_every_ms, early_end=True,
                                 endpoint=o.endpoint)
        vad = VadStage(self.store, o.board, vad_options,
                       on_start=lambda start_ns: self.publish(SpeechStarted(now_ns(), start_ns)))
        asr = AsrStage(self.store, o.board, o.asr, judge=vad.judge)
        before_vad, after_vad = [], []
        if o.wake:  # the listener hears everything in front of the VAD, the gate passes
            # only what follows the wake word (`pipelines/wake_stage.py`)
            from glasses.pipelines.wake_stage import wake_stages

            try:
                self.wake_listener, self.wake_gate = wake_stages(self.store, o.board,
                                                                 vad=vad_options)
            except BaseException:
                mic.close()
                camera.close()
                raise
            before_vad, after_vad = [self.wake_listener], [self.wake_gate]
        plugins, problems = discover()
        try:
            self.memory = self._open_memory()
        except BaseException:
            mic.close()
            camera.close()
            raise
        self.look = SkillStage(self.store, o.board, o.vlm, plugins, self._announce, self._notice,
                               self.memory)
        self.mic_source = MicrophoneSource(mic)
        camera_stages = [self.camera_gate, self.frames]
        if self.memory is not None:
            camera_stages.insert(1, Glance(self.memory, self._glance_look, self._busy,
                                           o.mode is not Mode.REALTIME))
        self.chains = [
            self.runner.add_chain(CameraSource(camera), camera_stages),
            self.runner.add_chain(self.mic_source, [self.mic_gate, *self.audio_stages,
                                                    *before_vad, vad, *after_vad,
                                                    FrameChoice(self.frames),
                                                    asr, ToRequests(self.requests)]),
            self.runner.add_chain(RequestSource(self.requests), [self.look]),
        ]
        self.runner.observe(self._on_item)
        self.runner.on_failure(self._on_failure)
        try:
            self.runner.start()
        except BaseException:
            mic.close()
            camera.close()
            if self.memory is not None:
                self.memory.close()
            raise
        if self.memory is not None:
            self.memory.set_origin(self.runner.start_ns)
        self.publish(SessionStarted(self.runner.start_ns, o.view, o.audio or "microphone",
                                    o.mode.value, o.board.name))
        for problem in problems + self._early_notices:
            self._notice(problem)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the media to end (every question answered); True if it did in time."""
        return self.runner.wait(timeout_s)

    def stop(self) -> RunReport:
        """Stop everything still running (at most about a second) and report; idempotent."""
        self._stopped = True  # seen at once by a presenting loop, however long the rest takes
        with self._lock:  # a second caller (the control socket's stop) waits for the report
            if self.report is None:
                self.report = self.runner.finish(0)
                if self.memory is not None:
                    self.memory.close()  # what was noted is stored first
                self.publish(SessionEnded(now_ns(), tuple(self.report.errors)))
        return self.report

    def run(self, duration_s: float | None = None) -> RunReport:
        """Start, wait for the end of the media (or `duration_s`), stop; the report."""
        self.start()
        self.wait(duration_s)
        return self.stop()

    @property
    def stopping(self) -> bool:
        return self._stopped

    def __enter__(self) -> "Assistant":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- memory --------------------------------------------------------------------

    def _open_memory(self) -> Remembering | None:
        """The session's memory, or None when it is off or cannot be used (said why)."""
        o = self.options
        if not o.memory:
            return None
        from glasses.models.people import blur_boxes
        from glasses.models.text_embedding import TextEmbedder
        from glasses.models.things import best_match, embed_thing

        try:
            memory = Memory(Path(o.memory_path) if o.memory_path else None, o.retention_s)
        except MemoryUnavailable as e:
            self._notice(f"{e}; the session goes on without memory")
            return None
        embedder = TextEmbedder(self.store, o.board)
        if o.vlm.model == "student":  # no classifier of its own: no things, no glances
            return Remembering(memory, embedder.embed, notice=self._notice)
        def thing_vec(image, centre):  # of the picture with its faces blurred
            vlm = self.look.vlm
            faces = vlm.people.faces(image)
            if faces:
                image, centre = blur_boxes(image, faces), None
            return embed_thing(vlm.classifier, image, centre=centre)

        return Remembering(memory, embedder.embed, thing_vec, best_match, self._notice)

    def _busy(self) -> bool:
        """Answering, or hearing speech (in the last `HEARD_NS`): glances wait."""
        return self.look.busy or now_ns() - self._heard_ns < HEARD_NS

    def _glance_look(self):
        """How a glance looks at a frame: the answerer's own vision models, once loaded."""
        look = getattr(getattr(self, "look", None), "vlm", None)
        look = getattr(look, "look", None)
        return None if look is None else (lambda image: look(image, Intent.GENERAL))

    # -- the wearer's switches -----------------------------------------------------

    def ask(self, text: str) -> None:
        """Ask about the current view as text; the answer comes as events, as for a spoken
        question. Raises BadInput for an empty or over-long question."""
        text = check_question(text)
        if not self._started or self._stopped:
            raise BadInput("the assistant is not running")
        t = now_ns()
        frame = frame_for(self.frames, t - TEXT_FRAME_NS, t) if self.camera_is_on else None
        self.requests.put(Transcript(t_ns=t, text=text, final=True, start_ns=t, frame=frame,
                                     source="text"), wait=False)
        self.publish(FinalTranscript(now_ns(), text, t, source="text"))

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def camera_is_on(self) -> bool:
        return self.camera_gate.is_open

    def mute(self) -> None:
        """The microphone is not listened to (what was being said is dropped)."""
        self._set_mic(muted=True, talking=self._talking)

    def unmute(self) -> None:
        self._set_mic(muted=False, talking=self._talking)

    def talk_start(self) -> None:
        """Push-to-talk: listen from now (only with `push_to_talk`)."""
        self._set_mic(muted=self._muted, talking=True)

    def talk_stop(self) -> None:
        self._set_mic(muted=self._muted, talking=False)

    def camera_off(self) -> None:
        """No frame is kept while the camera is off; questions are answered so."""
        self._set_camera(False)

    def camera_on(self) -> None:
        self._set_camera(True)

    def _set_camera(self, on: bool) -> None:
        self.camera_gate.set_open(on)
        self.publish(CameraSwitched(now_ns(), on))

    def _set_mic(self, muted: bool, talking: bool) -> None:
        changed_mute, changed_talk = muted != self._muted, talking != self._talking
        self._muted, self._talking = muted, talking
        self.mic_gate.set_open(not muted and (talking or not self.options.push_to_talk))
        if changed_mute:
            self.publish(Muted(now_ns(), muted))
        if changed_talk:
            self.publish(PushToTalk(now_ns(), talking))

    # -- from the pipeline to events -----------------------------------------------

    def _on_item(self, name: str, item) -> None:
        if isinstance(item, Utterance):
            self._heard_ns = now_ns()
        if isinstance(item, Utterance) and item.final and name == FrameChoice.name:
            self.publish(UtteranceHeard(now_ns(), item.start_ns, item.end_ns,
                                        round(item.duration_s, 3),
                                        None if item.frame is None else item.frame.index))
        elif isinstance(item, Transcript) and name != "requests":
            kind = FinalTranscript if item.final else PartialTranscript
            self.publish(kind(now_ns(), item.text, item.t_ns))
        elif isinstance(item, AnswerToken):
            self._on_answer(item)

    def _on_answer(self, item: AnswerToken) -> None:
        if item.card is not None:
            self._card = item.card
            return
        if item.last:
            text = "".join(self._answer).strip()
            self._answer.clear()
            card, self._card = self._card, None
            self.publish(Answer(now_ns(), text, item.t_ns, item.skill, card))
            return
        if not self._answer:
            self.publish(AnswerStarted(now_ns(), item.t_ns))
        self._answer.append(item.text)
        self.publish(AnswerPiece(now_ns(), item.text, item.t_ns))

    def _announce(self, skill: str, text: str, card) -> None:
        self.publish(Announcement(now_ns(), text, skill, card))

    def _notice(self, message: str) -> None:
        if not self.runner.start_ns:  # a skill failing while the models load
            self._early_notices.append(message)
            return
        log.warning("%s", message)
        self.publish(Notice(now_ns(), message))

    def _on_failure(self, chain: ChainStats) -> None:
        """A chain failed, or its device went away or came back (`Runner.on_failure`)."""
        if chain.source in self._failed or chain.source == "requests":
            return
        device = "camera" if chain.source.startswith("camera") else "microphone"
        if chain.error:
            self._failed.add(chain.source)
            self.publish(DeviceError(now_ns(), device, chain.source, chain.error))
        elif chain.away:
            if device == "camera":  # its last view is not the view now: as if it were off
                self.frames.forget(chain.last_t_ns)
            self.publish(DeviceLost(now_ns(), device, chain.source, chain.loss))
        else:
            self.publish(DeviceBack(now_ns(), device, chain.source, chain.loss, chain.away_s))
