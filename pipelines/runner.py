"""The runner: threads, bounded queues, drop policy, spans and clean shutdown.

A pipeline is a set of chains; a chain is one source followed by a list of stages.
Each source and each stage runs in its own thread, with a bounded `StreamQueue` in
front of every stage. Offline, sources wait for room and nothing is lost. A source
that cannot wait (a live device, or real-time replay) follows its policy: video keeps
the newest frames (stale ones are dropped and counted), audio counts every chunk it
had to discard. Stages always wait for room downstream.

Every `process` and `flush` call is timed from here and recorded as a `Span`.
Observers see every item that a source or stage emits, without touching stage code.

A source whose device goes away (`DeviceGone`) is not ended: its chain is marked lost,
the device is opened again every `retry_s` (sooner at first), and the chain is back when
the device delivers again. A device still away after `lost_for_s`, or at a stop, has
failed. Hooks hear of each of those changes.
"""

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from glasses.device.clock import NS_PER_S, now_ns
from glasses.device.errors import DeviceFailure, DeviceGone, GlassesError
from glasses.pipelines.frames import AudioChunk
from glasses.pipelines.queues import END, POLL_S, Policy, Stopped, StreamQueue
from glasses.pipelines.sources import Mode, Source, Timeline
from glasses.pipelines.spans import Span, SpanRecorder
from glasses.pipelines.stage import Stage

log = logging.getLogger(__name__)

Observer = Callable[[str, Any], None]  # (emitter name, item)

FIRST_RETRY_S = 0.1  # a lost device is first tried again after this; the wait doubles
RETRY_S = 0.5  # up to this: a device that returns is delivering again within about this
LOST_FOR_S = 30.0  # a device away this long has failed for good (a DeviceError)


@dataclass(frozen=True)
class RunnerOptions:
    mode: Mode = Mode.REALTIME

    # queues
    queue_size: int = 64  # items in front of each stage of an audio chain (64 x 32 ms = 2 s)
    video_queue_size: int = 2  # frames in front of each stage of a video chain

    # shutdown and tracing
    stop_timeout_s: float = 1.0  # all threads must end within this after a stop request
    span_capacity: int = 100_000  # spans kept in the ring buffer

    # devices that go away and come back
    retry_s: float = RETRY_S  # a lost device is opened again at least this often
    lost_for_s: float = LOST_FOR_S  # then it has failed


@dataclass
class ChainStats:
    """What happened to one chain's items. `lost_samples` counts discarded audio."""

    source: str
    produced: int = 0
    dropped: int = 0
    lost: int = 0
    lost_samples: int = 0
    superseded: int = 0  # items a stage skipped because a newer one made them pointless
    error: str | None = None
    exit_code: int = 0  # of the error, as `GlassesError.exit_code`

    # its device going away and coming back
    away: bool = False  # its device is away now (and tried again)
    loss: str = ""  # why it went away, the last time
    losses: int = 0  # times it went away
    away_since_ns: int = 0  # when it went away, the last time
    away_s: float = 0.0  # how long it was away, the last time it came back
    last_t_ns: int = 0  # capture time of the newest item its source produced


@dataclass
class QueueStats:
    """One queue in front of a stage: its bound and the most items it ever held."""

    chain: str
    stage: str
    maxsize: int
    high_water: int
    dropped: int


@dataclass
class RunReport:
    chains: list[ChainStats] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False
    stuck_threads: list[str] = field(default_factory=list)
    queues: list[QueueStats] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [c.error for c in self.chains if c.error]


@dataclass
class _Chain:
    source: Source
    stages: list[Stage]
    queues: list[StreamQueue]
    stats: ChainStats


class Runner:
    """Runs chains of stages over their sources until the media ends or `stop()`."""

    def __init__(self, options: RunnerOptions = RunnerOptions()):
        self.options = options
        self.recorder = SpanRecorder(options.span_capacity)
        self._chains: list[_Chain] = []
        self._observers: list[Observer] = []
        self._failure_hooks: list[Callable[[ChainStats], None]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._opened: list[Stage] = []
        self._start_ns = 0

    def add_chain(self, source: Source, stages: Iterable[Stage]) -> ChainStats:
        stages = list(stages)
        newest = source.policy is Policy.NEWEST
        size = self.options.video_queue_size if newest else self.options.queue_size
        queues = [StreamQueue(size, source.policy, self._stop) for _ in stages]
        chain = _Chain(source, stages, queues, ChainStats(source.name))
        self._chains.append(chain)
        return chain.stats

    def observe(self, observer: Observer) -> None:
        """Call `observer(name, item)` for every item emitted; it must be quick."""
        self._observers.append(observer)

    def on_failure(self, hook: Callable[[ChainStats], None]) -> None:
        """Call `hook(stats)` from the chain's thread when its source or a stage fails
        (`stats.error` is set), its device goes away (`stats.away`) or comes back (neither)."""
        self._failure_hooks.append(hook)

    def queue_stats(self) -> list[QueueStats]:
        """Every queue's bound and high-water mark so far."""
        return [QueueStats(c.source.name, stage.name, q.maxsize, q.high_water, q.dropped)
                for c in self._chains for stage, q in zip(c.stages, c.queues, strict=True)]

    def _failed(self, chain: _Chain) -> None:
        for hook in self._failure_hooks:
            try:
                hook(chain.stats)
            except Exception:
                log.exception("failure hook for %s", chain.source.name)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def start_ns(self) -> int:
        """When streaming started: media time 0 in REALTIME and SIMULATED modes."""
        return self._start_ns

    def start(self) -> None:
        """Open every stage (in this thread, so load errors surface here), then stream.

        Media time 0 is when streaming starts, after the models have loaded: a real-time
        replay then never begins behind its own schedule."""
        try:
            for chain in self._chains:
                for stage in chain.stages:
                    stage.open()
                    self._opened.append(stage)
        except BaseException:
            self._close_opened()
            raise
        self._start_ns = now_ns()
        self._timeline = Timeline(self.options.mode, self._start_ns, self._stop)
        for chain in self._chains:
            self._spawn(f"source:{chain.source.name}", self._run_source, chain, daemon=True)
            for i, stage in enumerate(chain.stages):
                self._spawn(f"stage:{stage.name}", self._run_stage, chain, i, daemon=False)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for every chain to finish; True if they did within `timeout_s`."""
        deadline = None if timeout_s is None else now_ns() + int(timeout_s * NS_PER_S)
        for t in self._threads:
            while t.is_alive():
                if deadline is not None and now_ns() >= deadline:
                    return False
                t.join(POLL_S)  # short joins keep Ctrl-C responsive
        return True

    def stop(self) -> list[str]:
        """Ask every thread to end; return the names of threads still alive after the timeout."""
        self._stop.set()
        for chain in self._chains:
            for stage in chain.stages:
                stage.cancel()
        deadline = now_ns() + int(self.options.stop_timeout_s * NS_PER_S)
        for t in self._threads:
            t.join(max(0.0, (deadline - now_ns()) / NS_PER_S))
        return [t.name for t in self._threads if t.is_alive()]

    def run(self, duration_s: float | None = None) -> RunReport:
        """Start, wait for the end of the media (or `duration_s`, or Ctrl-C), stop, report."""
        self.start()
        return self.finish(duration_s)

    def finish(self, duration_s: float | None = None) -> RunReport:
        """After `start`: wait for the end of the media (or `duration_s`, or Ctrl-C), stop,
        report. Ctrl-C raises `Interrupted` carrying the report."""
        interrupted = False
        try:
            self.wait(duration_s)
        except KeyboardInterrupt:
            interrupted = True
        stuck = self.stop()
        report = self.report()
        report.interrupted = interrupted
        report.stuck_threads = stuck
        if interrupted:
            raise Interrupted(report)
        return report

    def report(self) -> RunReport:
        for chain in self._chains:
            chain.stats.dropped = sum(q.dropped for q in chain.queues)
        return RunReport(
            chains=[c.stats for c in self._chains],
            spans=self.recorder.spans(),
            wall_s=(now_ns() - self._start_ns) / NS_PER_S,
            queues=self.queue_stats(),
        )

    # -- threads -----------------------------------------------------------------

    def _spawn(self, name: str, target: Callable, *args: Any, daemon: bool) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=daemon)
        self._threads.append(t)
        t.start()

    def _emit(self, name: str, item: Any) -> None:
        for observer in self._observers:
            observer(name, item)

    def _run_source(self, chain: _Chain) -> None:
        source, stats = chain.source, chain.stats
        out = chain.queues[0] if chain.queues else None
        wait = source.can_wait(self.options.mode)
        sid = -1 if source.live else self._timeline.join()
        try:
            while True:
                try:
                    for item in source.items(self._timeline, sid):
                        if stats.away:
                            self._back(chain)
                        self._forward(chain, item, out, wait)
                    break
                except DeviceGone as e:
                    self._reopen(chain, str(e))
        except Stopped:
            pass
        except GlassesError as e:
            stats.error, stats.exit_code = str(e), e.exit_code
            self._failed(chain)
        except Exception as e:  # a device library failing in its own way
            stats.error, stats.exit_code = f"{source.name} failed: {type(e).__name__}: {e}", 1
            log.debug("%s", stats.error, exc_info=True)
            self._failed(chain)
        finally:
            if sid >= 0:
                self._timeline.leave(sid)
            source.close()
            if out is not None:
                out.put(END)

    def _forward(self, chain: _Chain, item: Any, out: StreamQueue | None, wait: bool) -> None:
        stats = chain.stats
        stats.produced += 1
        stats.last_t_ns = getattr(item, "t_ns", stats.last_t_ns)
        self._emit(chain.source.name, item)
        if out is not None and out.put(item, wait=wait) < 0:
            stats.lost += 1
            if isinstance(item, AudioChunk):
                stats.lost_samples += len(item.samples)
            if stats.lost == 1 or stats.lost % 100 == 0:
                log.warning("%s: pipeline behind, %d chunks discarded", chain.source.name,
                            stats.lost)

    def _reopen(self, chain: _Chain, reason: str) -> None:
        """After `DeviceGone`: mark the chain lost (once), then open the device again,
        waiting longer each time up to `retry_s`, until it opens. Raises DeviceFailure
        when it is still away after `lost_for_s` or at a stop."""
        stats, o = chain.stats, self.options
        if not stats.away:
            stats.away, stats.loss, stats.losses = True, reason, stats.losses + 1
            stats.away_since_ns = now_ns()
            log.warning("%s went away (%s): trying it again", stats.source, reason)
            self._failed(chain)
        since = stats.away_since_ns
        delay = min(FIRST_RETRY_S, o.retry_s)
        while True:
            away_s = (now_ns() - since) / NS_PER_S
            if away_s >= o.lost_for_s:
                raise DeviceFailure(f"{reason}; not back after {o.lost_for_s:g} s")
            if self._stop.wait(min(delay, o.lost_for_s - away_s)):
                raise DeviceFailure(f"{reason}; still away at the end")
            try:
                chain.source.reopen()
                return
            except DeviceFailure as e:
                log.debug("%s: still away (%s)", stats.source, e)
            delay = min(2 * delay, o.retry_s)

    def _back(self, chain: _Chain) -> None:
        stats = chain.stats
        stats.away = False
        stats.away_s = round((now_ns() - stats.away_since_ns) / NS_PER_S, 3)
        log.warning("%s is back after %.1f s", stats.source, stats.away_s)
        self._failed(chain)

    def _run_stage(self, chain: _Chain, index: int) -> None:
        stage, inbox = chain.stages[index], chain.queues[index]
        out = chain.queues[index + 1] if index + 1 < len(chain.queues) else None
        after = chain.stages[index + 1] if index + 1 < len(chain.stages) else None
        try:
            while True:
                item = inbox.get()
                if item is END:
                    self._call(stage, stage.flush, (), None, out, after)
                    break
                item, skipped = inbox.take_superseded(item, stage.supersedes)
                chain.stats.superseded += skipped
                self._call(stage, stage.process, (item,), item.t_ns, out, after)
        except Stopped:
            pass
        except Exception as e:
            if self._stop.is_set():  # cancelled by stop(): not an error
                return
            known = isinstance(e, GlassesError)
            if not chain.stats.error:
                chain.stats.error = f"stage {stage.name}: {e if known else repr(e)}"
                chain.stats.exit_code = e.exit_code if known else 1
            log.debug("stage %s failed", stage.name, exc_info=True)
            self._failed(chain)
            self._stop_after_error(chain, index)
        finally:
            try:
                stage.close()
            finally:
                if out is not None:
                    out.put(END)

    def _call(self, stage: Stage, fn: Callable, args: tuple, t_ns: int | None, out,
              after: Stage | None) -> None:
        """Run one process/flush call, forwarding its outputs (and telling the stage `after`
        of each, `Stage.preempt`); record its span."""
        start = now_ns()
        waited = 0
        for produced in fn(*args):
            self._emit(stage.name, produced)
            if out is not None:
                waited += out.put(produced)
                after.preempt(produced)
        if t_ns is not None:
            self.recorder.record(Span(stage.name, t_ns, start, now_ns(), waited))

    def _stop_after_error(self, chain: _Chain, index: int) -> None:
        """A failed stage ends its chain: drain its inbox so upstream never blocks on it."""
        inbox = chain.queues[index]
        while not self._stop.is_set():
            try:
                if inbox.get() is END:
                    return
            except Stopped:
                return

    def _close_opened(self) -> None:
        for stage in reversed(self._opened):
            try:
                stage.close()
            except Exception:
                log.exception("closing %s", stage.name)
        self._opened.clear()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during `run`, carrying the report of what ran until then."""

    def __init__(self, report: RunReport):
        super().__init__()
        self.report = report
