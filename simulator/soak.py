"""Hours of use: the assistant on a long looped stream with a question every few seconds.

`run_soak` plays `minutes` of the demo looped (`simulator/soak_media.py`) through the whole
assistant, in SIMULATED mode (as fast as it goes: an hour of media in minutes) or in
REALTIME (the wall clock, the display drawn at 15 fps, headless), and reports what hours
of use would show: resident memory after warm-up and at the end, each queue's high-water
mark against its bound, questions asked, heard and answered, whether the latency of the
last turns drifted from the first, and, in real time, the display's rate and late frames.

Latency is what can be measured in the mode: in REALTIME the wearer's wait, end of speech
to the answer on the display; in SIMULATED the media runs ahead of the clock, so it is
the work of a turn, from the end of speech being found to the answer (wall clock).
"""

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from glasses.device.boards import BoardProfile
from glasses.device.clock import NS_PER_S
from glasses.device.errors import BadInput
from glasses.device.memory import peak_rss_mb, rss_mb
from glasses.models.asr import AsrOptions
from glasses.models.store import ModelStore
from glasses.models.vlm import VlmOptions
from glasses.pipelines import events as ev
from glasses.pipelines.assistant import Assistant, AssistantOptions
from glasses.pipelines.sources import Mode
from glasses.simulator.hud import HudState
from glasses.simulator.present import Presenter
from glasses.simulator.session import DEMO_VIDEO, _show
from glasses.simulator.soak_media import HALF_S, SoakCamera, expected, schedule, write_track

MAX_MINUTES = 24 * 60  # of media, at most
MB = 1024 * 1024


@dataclass(frozen=True)
class SoakOptions:
    # the stream
    minutes: float = 60.0  # of media
    every_s: float = 10.0  # a question this often
    mode: Mode = Mode.SIMULATED

    # the assistant
    board: BoardProfile = field(default_factory=BoardProfile.laptop)
    asr: AsrOptions = field(default_factory=AsrOptions)
    vlm: VlmOptions = field(default_factory=VlmOptions)
    memory: bool = True  # moments noted and recalled (into a file of the soak's own)
    display_fps: float = 15.0  # REALTIME: frames drawn per second, headless

    # what is measured
    # warm-up: until the models' arenas, caches and buffers have their working size; the
    # baseline of resident memory is taken after it
    warmup_share: float = 0.1  # of the media ...
    warmup_turns: int = 5  # ... and at least this many answers
    rss_window: int = 5  # samples at least: the baseline and the end are each taken over
    rss_share: float = 0.1  # this share of the samples after warm-up, if more
    drift_turns: int = 10  # the latency of the first and of the last this many compared
    sample_s: float = 2.0  # resident memory sampled this often (wall clock)
    progress_s: float = 30.0  # a line of progress this often (wall clock)

    def check(self) -> None:
        if not 0 < self.minutes <= MAX_MINUTES:
            raise BadInput(f"--minutes {self.minutes:g}: more than 0 and at most {MAX_MINUTES}")
        if self.mode is Mode.OFFLINE:
            raise BadInput("a soak runs in realtime or simulated mode")
        schedule(0, self.every_s)  # refuses questions too close together


def cpu_s() -> tuple[float, float]:
    """(CPU seconds this process has used, CPU seconds the whole machine has been busy):
    the difference is what other programs took, which slows a soak on shared cores."""
    own = os.times()
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return own.user + own.system, busy / os.sysconf("SC_CLK_TCK")


class _Turns:
    """Each heard question's times, keyed by its exact end of speech."""

    def __init__(self) -> None:
        self.by_end: dict[int, dict] = {}
        self.answered = 0
        self._lock = threading.Lock()

    def __call__(self, e: ev.Event) -> None:
        with self._lock:
            match e:
                case ev.UtteranceHeard():
                    self.by_end[e.end_ns] = {"start_ns": e.start_ns, "end_ns": e.end_ns,
                                             "heard_ns": e.t_ns}
                case ev.FinalTranscript() if e.speech_end_ns in self.by_end:
                    self.by_end[e.speech_end_ns].update(text=e.text, final_ns=e.t_ns)
                case ev.Answer() if e.speech_end_ns in self.by_end:
                    turn = self.by_end[e.speech_end_ns]
                    if "answer_ns" not in turn:
                        turn.update(answer=e.text, answer_ns=e.t_ns)
                        self.answered += 1
                case ev.AnswerShown() if e.speech_end_ns in self.by_end:
                    self.by_end[e.speech_end_ns].setdefault("shown_ns", e.t_ns)


def run_soak(options: SoakOptions, store: ModelStore,
             progress: Callable[[str], None] = lambda _: None) -> dict:
    """Play the soak; its report (see the module's docstring), as a JSON-ready dict."""
    options.check()
    o, length_s = options, options.minutes * 60
    questions = schedule(length_s, o.every_s)
    with tempfile.TemporaryDirectory(prefix="glasses-soak-") as tmp:
        track = Path(tmp) / "soak.wav"
        write_track(track, questions, length_s)
        camera = SoakCamera(length_s, o.every_s, o.board.camera_size)
        assistant = Assistant(AssistantOptions(
            view=str(DEMO_VIDEO), audio=str(track), mode=o.mode, board=o.board, asr=o.asr,
            vlm=o.vlm, memory=o.memory, memory_path=str(Path(tmp) / "memory.db")), store)
        turns, hud = _Turns(), HudState()
        assistant.subscribe(turns)
        presenter = None
        if o.mode is Mode.REALTIME:
            assistant.subscribe(lambda e: _show(e, hud, None))
        progress(f"soak: {o.minutes:g} min of media, {len(questions)} questions, "
                 f"{o.mode.value}; loading the models")
        assistant.start(camera=camera)
        sampler = _Sampler(assistant, turns, o, length_s, len(questions), progress)
        try:
            if o.mode is Mode.REALTIME:
                presenter = Presenter(assistant, hud, o.board.display, o.board.camera_size,
                                      o.display_fps, window=False, recorder=None)
                sampler.presenter = presenter
                sampler.start()
                presenter.run(None)
            else:
                sampler.start()
                assistant.wait()
        finally:
            sampler.finish()
            report = assistant.stop()
    return _report(o, questions, turns, sampler, assistant, report, presenter)


class _Sampler(threading.Thread):
    """Samples resident memory (and the display's counters) until `finish`."""

    def __init__(self, assistant: Assistant, turns: _Turns, options: SoakOptions,
                 length_s: float, asked: int, progress: Callable[[str], None]):
        super().__init__(name="soak-sampler", daemon=True)
        self.assistant, self.turns, self.options = assistant, turns, options
        self.length_s, self.asked, self.progress = length_s, asked, progress
        self.presenter: Presenter | None = None
        self.samples: list[dict] = []  # wall_s, media_s, rss_mb, answered, late, frames
        self.warm: dict | None = None
        self._done = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        said_at = 0.0
        while True:
            self.sample()
            wall = time.monotonic() - self._t0
            if wall - said_at >= self.options.progress_s:
                said_at = wall
                s = self.samples[-1]
                self.progress(f"soak: {s['media_s'] / 60:.1f}/{self.length_s / 60:g} min of "
                              f"media in {wall / 60:.1f} min, {s['answered']}/{self.asked} "
                              f"answered, RSS {s['rss_mb']:.0f} MB")
            if self._done.wait(self.options.sample_s):
                return

    def sample(self) -> None:
        mic = next((c for c in self.assistant.chains if c.source.startswith("microphone")),
                   None)
        media = (mic.last_t_ns - self.assistant.start_ns) / NS_PER_S if mic and mic.last_t_ns \
            else 0.0
        p = self.presenter
        own, busy = cpu_s()
        s = {"wall_s": round(time.monotonic() - self._t0, 2), "media_s": round(media, 2),
             "cpu_own_s": own, "cpu_busy_s": busy,
             "rss_mb": round(rss_mb(), 1), "answered": self.turns.answered,
             "late": p.stats.late if p else 0, "frames": p.stats.frames if p else 0}
        self.samples.append(s)
        o = self.options
        if self.warm is None and s["answered"] >= o.warmup_turns and (
                s["media_s"] >= o.warmup_share * self.length_s):
            self.warm = s

    def finish(self) -> None:
        """The last sample (the end), once; then the thread ends."""
        if not self._done.is_set():
            self._done.set()
            if self.is_alive():
                self.join()
            self.sample()


def _report(o: SoakOptions, questions, turns: _Turns, sampler: _Sampler,
            assistant: Assistant, report, presenter: Presenter | None) -> dict:
    start = assistant.start_ns
    heard = sorted(turns.by_end.items())
    per_question = []
    for q in questions:  # the question heard in its half of the demo, if any
        mine = [t for end, t in heard
                if q.at_s <= (t["start_ns"] - start) / NS_PER_S < q.at_s + HALF_S]
        per_question.append((q, mine[0] if mine else None))
    realtime = o.mode is Mode.REALTIME
    ms, each = [], []  # each: [media s, latency ms, of it the final text's ms]
    for _, t in per_question:
        if t is None or "answer_ns" not in t or (realtime and "shown_ns" not in t):
            continue
        since = t["end_ns"] if realtime else t["heard_ns"]
        ms.append(((t["shown_ns"] if realtime else t["answer_ns"]) - since) / 1e6)
        each.append([round((t["start_ns"] - start) / NS_PER_S, 1), round(ms[-1]),
                     round((t.get("final_ns", since) - since) / 1e6)])
    n = o.drift_turns
    first = statistics.median(ms[:n]) if ms else None
    last = statistics.median(ms[-n:]) if ms else None
    end = sampler.samples[-1]
    warm = sampler.warm or end
    after = [s for s in sampler.samples if s["wall_s"] >= warm["wall_s"]]
    w = max(1, min(max(o.rss_window, int(o.rss_share * len(after))), len(after) // 2))
    head, tail = [s["rss_mb"] for s in after[:w]], [s["rss_mb"] for s in after[-w:]]
    warm_mb, end_mb = round(statistics.median(head), 1), round(statistics.median(tail), 1)
    queues = [{"chain": q.chain, "stage": q.stage, "bound": q.maxsize,
               "high_water": q.high_water, "dropped": q.dropped}
              for q in assistant.runner.queue_stats()]
    queues.append({"chain": "requests", "stage": "inbox", "bound": assistant.requests.capacity,
                   "high_water": assistant.requests.high_water, "dropped": 0})
    camera = next((c for c in report.chains if c.source.startswith("camera")), None)
    mic = next((c for c in report.chains if c.source.startswith("microphone")), None)
    answered = sum(t is not None and "answer_ns" in t for _, t in per_question)
    data = {
        "mode": o.mode.value, "board": o.board.name, "minutes": o.minutes,
        "every_s": o.every_s, "wall_s": round(report.wall_s, 1),
        "turns": {"asked": len(questions),
                  "heard": sum(t is not None for _, t in per_question),
                  "answered": answered,
                  "as_expected": sum(t is not None and expected(t.get("answer"), q.expect)
                                     for q, t in per_question),
                  "unanswered_at_s": [q.at_s for q, t in per_question
                                      if t is None or "answer_ns" not in t][:20],
                  "other_utterances": len(heard) - sum(t is not None for _, t in per_question)},
        "latency": {"measure": "end of speech -> answer on the display" if realtime else
                    "end of speech found -> answer (wall clock)",
                    "turns": len(ms), f"first_{n}_median_ms": _r(first),
                    f"last_{n}_median_ms": _r(last),
                    "drift_pct": _r(100 * (last - first) / first) if first else None,
                    "median_ms": _r(statistics.median(ms)) if ms else None,
                    "max_ms": _r(max(ms)) if ms else None,
                    "each": each},  # [media s, ms, of which to the final text]
        "rss_mb": {"measure": f"median (and floor: the least) of {w} samples "
                   f"{o.sample_s:g} s apart, after warm-up ({o.warmup_share:.0%} of the "
                   f"media, {o.warmup_turns} answers at least) and at the end",
                   "warm": warm_mb, "warm_at_wall_s": warm["wall_s"],
                   "warm_at_media_s": warm["media_s"], "end": end_mb,
                   "growth": round(end_mb - warm_mb, 1),
                   "warm_floor": min(head), "end_floor": min(tail),
                   "floor_growth": round(min(tail) - min(head), 1),
                   "slope_mb_per_media_hour": _slope(after),
                   "min_after_warm": min(s["rss_mb"] for s in after),
                   "max_after_warm": max(s["rss_mb"] for s in after),
                   "peak": round(peak_rss_mb(), 1)},
        "queues": queues,
        "queues_within_bounds": all(q["high_water"] <= q["bound"] for q in queues),
        "video": {"frames": camera.produced if camera else 0,
                  "dropped": camera.dropped if camera else 0},
        "audio_lost_samples": mic.lost_samples if mic else 0,
        "spans": {"recorded": assistant.runner.recorder.recorded,
                  "kept": len(report.spans)},
        "errors": report.errors,
        "samples": _thin(sampler.samples, 200),  # [wall s, media s, RSS MB, others' CPU %]
    }
    data["cpu"] = _cpu(sampler.samples, per_question[:n], per_question[-n:], start)
    if presenter is not None:
        half = next((s for s in sampler.samples if s["wall_s"] >= end["wall_s"] / 2), end)
        data["display"] = {"frames": presenter.stats.frames, "fps": round(presenter.stats.fps, 2),
                           "late": presenter.stats.late,
                           "late_first_half": half["late"],
                           "late_second_half": presenter.stats.late - half["late"]}
    return data


def _cpu(samples: list[dict], first: list, last: list, start_ns: int) -> dict:
    """CPU use, in % of one core: this process's over the run, and other programs' while
    the first and the last turns compared for drift were played."""
    def others(turns: list) -> float | None:
        times = [(t["start_ns"] - start_ns) / NS_PER_S for _, t in turns if t is not None]
        if not times:
            return None
        inside = [s for s in samples if min(times) <= s["media_s"] <= max(times) + HALF_S]
        before = [s for s in samples if s["media_s"] < min(times)][-1:]
        window = before + inside
        if len(window) < 2:
            return None
        a, b = window[0], window[-1]
        other = (b["cpu_busy_s"] - a["cpu_busy_s"]) - (b["cpu_own_s"] - a["cpu_own_s"])
        return round(100 * max(0.0, other) / max(1e-9, b["wall_s"] - a["wall_s"]), 1)

    a, b = samples[0], samples[-1]
    wall = max(1e-9, b["wall_s"] - a["wall_s"])
    return {"cores": os.cpu_count(),
            "own_percent": round(100 * (b["cpu_own_s"] - a["cpu_own_s"]) / wall, 1),
            "others_percent": round(100 * max(0.0, (b["cpu_busy_s"] - a["cpu_busy_s"])
                                              - (b["cpu_own_s"] - a["cpu_own_s"])) / wall, 1),
            "others_percent_first_turns": others(first),
            "others_percent_last_turns": others(last)}


def _slope(samples: list[dict]) -> float | None:
    """Least-squares growth of resident memory, MB per hour of media."""
    if len(samples) < 3 or samples[-1]["media_s"] <= samples[0]["media_s"]:
        return None
    x = [s["media_s"] / 3600 for s in samples]
    y = [s["rss_mb"] for s in samples]
    return round(statistics.linear_regression(x, y).slope, 1)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _thin(samples: list[dict], most: int) -> list[list]:
    """At most `most` samples as [wall s, media s, RSS MB, other programs' CPU % of one
    core since the sample before]."""
    step = max(1, -(-len(samples) // most))
    kept = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    out, before = [], kept[0]
    for s in kept:
        wall = s["wall_s"] - before["wall_s"]
        other = (s["cpu_busy_s"] - before["cpu_busy_s"]) - (s["cpu_own_s"] - before["cpu_own_s"])
        out.append([s["wall_s"], s["media_s"], s["rss_mb"],
                    round(100 * max(0.0, other) / wall, 1) if wall > 0 else 0.0])
        before = s
    return out
