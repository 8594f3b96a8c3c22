"""Background training jobs with a server-wide cap, a queue, Stop, and abandonment detection.

A :class:`TrainingJob` runs :func:`fmnist.training.train` in its own thread and records
progress in a lock-protected object that any thread may read (the UI polls it). A
:class:`JobManager` lets at most ``max_concurrent`` jobs train at once; the others wait in a
first-come queue and know their position. A job whose owner is gone (its ``owner_connected`` callable
says False, e.g. the visitor's connection closed; or, without one, no heartbeat arrives) for
``abandon_after_seconds`` is stopped and gives its slot back. A queued run expected to take
under ``SHORT_RUN_SECONDS`` may go before longer ones, each of which it may overtake at most
``MAX_OVERTAKES`` times, so nothing starves. Nothing here knows about Streamlit.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import enum
import gc
import itertools
import logging
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from fmnist import timing, training
from fmnist.data import FashionMnist
from fmnist.training import EpochReport, TrainingConfig, TrainingPoint, TrainingResult, train

logger = logging.getLogger(__name__)

SHORT_RUN_SECONDS = 5.0
"""A queued run expected to take less than this may go before longer queued runs."""
MAX_OVERTAKES = 3
"""How many short runs may go before a longer queued run: it waits a bounded time, never forever."""
FINISH_BEYOND_COLLECTION_SECONDS = 0.05
"""Of a job's finish: what is not its closing garbage collection (``train`` returning after the last
epoch took 0.005 s here)."""


def name_os_thread(name: str) -> None:
    """Give the current thread an OS-level name (Linux), so ``top -H`` and ``/proc/<pid>/task/*/comm``
    show which threads are training jobs. Best effort: elsewhere it does nothing."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # 15 = PR_SET_NAME


def usable_cpu_count(cgroup_root: str | os.PathLike = "/sys/fs/cgroup",
                     process_cgroups: str | os.PathLike = "/proc/self/cgroup") -> int:
    """The CPUs this process may really use: its affinity mask, capped by its cgroup's CPU quota.

    ``os.cpu_count()`` counts the machine's CPUs, so a container given 2 CPUs of a 64-core
    host would let 64 jobs train at once. The quota (cgroup v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) is read for the process's own cgroup and
    every ancestor, the smallest one wins, and a fractional quota (1.5 CPUs) rounds up, as
    the JVM does. Missing or unreadable files mean no quota. The paths are arguments so that
    tests can point them at fake files.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota(Path(cgroup_root), Path(process_cgroups))
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def _cgroup_cpu_quota(cgroup_root: Path, process_cgroups: Path) -> float | None:
    """The smallest CPU quota (in CPUs) over the process's cgroups and their ancestors, or None."""
    try:
        lines = process_cgroups.read_text().splitlines()
    except OSError:
        lines = []
    quotas: list[float] = []
    for line in lines:
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        relative = Path(path.lstrip("/"))
        if controllers == "":  # cgroup v2: cpu.max holds "<quota|max> <period>"
            for directory in _directory_and_ancestors(cgroup_root, relative):
                fields = _read_fields(directory / "cpu.max")
                if len(fields) == 2 and fields[0] != "max":
                    quotas.append(_ratio(fields[0], fields[1]))
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's own hierarchy
            for mount in dict.fromkeys((controllers, "cpu", "cpu,cpuacct")):
                for directory in _directory_and_ancestors(cgroup_root / mount, relative):
                    quota = _read_fields(directory / "cpu.cfs_quota_us")
                    period = _read_fields(directory / "cpu.cfs_period_us")
                    if len(quota) == 1 and len(period) == 1 and not quota[0].startswith("-"):
                        quotas.append(_ratio(quota[0], period[0]))
    valid = [quota for quota in quotas if quota > 0 and math.isfinite(quota)]
    return min(valid) if valid else None


def _directory_and_ancestors(mount: Path, relative: Path) -> list[Path]:
    return [mount / relative, *(mount / parent for parent in relative.parents)]


def _read_fields(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def _ratio(quota: str, period: str) -> float:
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return math.nan


class JobStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def is_active(self) -> bool:
        """Queued or running: the job still holds, or waits for, a slot."""
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclasses.dataclass(frozen=True)
class JobSnapshot:
    """An immutable copy of a job's progress, safe to draw from."""

    job_id: int
    status: JobStatus
    queue_position: int
    epochs: tuple[EpochReport, ...]
    current_epoch: int
    epoch_fraction: float
    seconds_in_epoch: float
    total_epochs: int
    error: str
    stop_requested: bool
    points: tuple[TrainingPoint, ...] = ()
    """Running training loss and accuracy within epochs, about twice a second: the live curve."""
    abandoned: bool = False
    """Stopped because its owner went away, not by Stop."""
    expected_wait_seconds: float | None = None
    """For a queued job: about how long until it starts."""
    eta: float | None = None
    waiting_for_worker: bool = False
    """Queued in a cluster's scheduler (the Ray backend), not in this server's own queue."""

    def eta_seconds(self) -> float | None:
        """Seconds left, for a running job (see :func:`fmnist.timing.remaining_seconds`)."""
        return self.eta if self.status is JobStatus.RUNNING else None


class TrainingJob:
    """One training run in a background thread. The thread never touches any UI."""

    _ids = itertools.count(1)

    def __init__(self, config: TrainingConfig, dataset: FashionMnist, manager: JobManager,
                 owner_connected: Callable[[], bool] | None = None) -> None:
        self.job_id = next(self._ids)
        self.config = config
        self._training_images = len(dataset.x_train)
        self.estimate = manager.timings.estimate(config, self._training_images)
        self._owner_connected = owner_connected
        self._owner_gone_since: float | None = None
        self._abandoned = False
        self._eta = timing.EtaSmoother()
        self.overtaken = 0
        self._dataset = dataset
        self._manager = manager
        self._lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._done = threading.Event()
        self._status = JobStatus.QUEUED
        self._epochs: list[EpochReport] = []
        self._points: list[TrainingPoint] = []
        self._current_epoch = 0
        self._epoch_fraction = 0.0
        self._epoch_started = time.monotonic()
        self._phases: list[timing.EpochPhases] = []
        self._epoch_reports: list[tuple[float, float]] = []  # (time, fraction) from the epoch's first step group on
        self._steps_done_at: float | None = None
        self._pace_seconds: float | None = None
        self._pace_share = 0.0
        self._run_started: float | None = None
        self._last_epoch_ended: float | None = None
        self._error = ""
        self._last_heartbeat = time.monotonic()
        self.result: TrainingResult | None = None
        self.thread = threading.Thread(target=self._run, name=f"fmnist-training-{self.job_id}", daemon=True)

    # ------------------------------------------------------------- called by any thread
    def request_stop(self) -> None:
        """Stop after the current step group (or leave the queue), keeping what was trained."""
        self._stop_requested.set()
        self._manager.wake_waiters()

    def heartbeat(self) -> None:
        """The owner is still there; call it more often than ``abandon_after_seconds``."""
        with self._lock:
            self._last_heartbeat = time.monotonic()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends; True if it did."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def _needs_compiling(self) -> bool:
        training_samples, _ = timing.split_sizes(self.config, self._training_images)
        return training.needs_compiling(self.config, training_samples)

    def remaining_seconds(self) -> float:
        """Expected seconds until this job ends: its estimate while queued, its ETA while running."""
        now = time.monotonic()
        with self._lock:
            status, current = self._status, self._current_epoch
            progress = timing.RunProgress(
                total_epochs=self.config.epochs, phases=tuple(self._phases), current_epoch=current,
                fraction=self._epoch_fraction, seconds_in_epoch=now - self._epoch_started,
                pace_seconds=self._pace_seconds, pace_share=self._pace_share,
                validating_for=None if self._steps_done_at is None else now - self._steps_done_at,
                since_last_epoch=0.0 if self._last_epoch_ended is None else now - self._last_epoch_ended)
            run_started = self._run_started
        if status is JobStatus.QUEUED:
            return self.estimate.total_seconds
        if status.is_active and current == 0:  # preparing: its set-up counts down, the epochs wait
            preparing_for = 0.0 if run_started is None else now - run_started
            epochs = self.estimate.total_seconds - self.estimate.setup_seconds + self.estimate.finish_seconds
            return max(self.estimate.total_seconds - preparing_for, epochs)
        if not status.is_active:
            return 0.0
        return timing.remaining_seconds(progress, self.estimate)

    def snapshot(self) -> JobSnapshot:
        queue_position = self._manager.queue_position(self)  # before our lock: the manager's lock comes first
        wait = self._manager.expected_wait(self) if queue_position else None
        remaining = self.remaining_seconds()
        with self._lock:
            running = self._status is JobStatus.RUNNING
            return JobSnapshot(job_id=self.job_id, status=self._status, queue_position=queue_position,
                               epochs=tuple(self._epochs), current_epoch=self._current_epoch,
                               epoch_fraction=self._epoch_fraction,
                               seconds_in_epoch=time.monotonic() - self._epoch_started,
                               total_epochs=self.config.epochs, error=self._error,
                               stop_requested=self._stop_requested.is_set(), abandoned=self._abandoned,
                               points=tuple(self._points),
                               expected_wait_seconds=wait,
                               eta=self._eta.reading(time.monotonic(), remaining) if running else None)

    # ------------------------------------------------------------- the worker thread
    def _owner_gone_for(self) -> float:
        """Seconds the owner has been gone: disconnected (with ``owner_connected``), else silent."""
        now = time.monotonic()
        if self._owner_connected is not None:
            try:
                connected = bool(self._owner_connected())
            except Exception:  # noqa: BLE001 - a broken check must not kill the run
                connected = True
            if connected:
                self._owner_gone_since = None
                return 0.0
            if self._owner_gone_since is None:
                self._owner_gone_since = now
            return now - self._owner_gone_since
        with self._lock:
            return now - self._last_heartbeat

    def _should_stop(self) -> bool:
        if self._stop_requested.is_set():
            return True
        gone_for = self._owner_gone_for()
        limit = (self._manager.abandon_after_seconds if self._owner_connected is None
                 else self._manager.disconnect_grace_seconds)
        if gone_for > limit:
            logger.info("job %s: its owner is gone for %.0f s; stopping it", self.job_id, gone_for)
            with self._lock:
                self._abandoned = True
            self._stop_requested.set()
            return True
        return False

    def _on_epoch(self, report: EpochReport) -> None:
        now = time.monotonic()
        with self._lock:
            self._epochs.append(report)
            self._epoch_fraction = 1.0
            steps_done_at = self._steps_done_at if self._steps_done_at is not None else now
            stalled = timing.stall_seconds(self._epoch_reports)
            self._phases.append(timing.EpochPhases(training_seconds=steps_done_at - self._epoch_started - stalled,
                                                   validation_seconds=now - steps_done_at,
                                                   steady_seconds=timing.steady_pace(self._epoch_reports)))
            self._steps_done_at = None
            self._last_epoch_ended = now

    def _on_point(self, point: TrainingPoint) -> None:
        with self._lock:
            self._points.append(point)

    def _on_batch(self, epoch: int, fraction: float) -> None:
        """Also times the epoch's phases: its steps' pace after the first step group (which carries
        any tracing), stalls left out, and when the steps are done and validation begins."""
        now = time.monotonic()
        with self._lock:
            if epoch != self._current_epoch:
                self._epoch_started = now
                self._epoch_reports = []
                self._pace_seconds, self._pace_share = None, 0.0
                self._steps_done_at = None
            self._current_epoch = epoch
            self._epoch_fraction = fraction
            if fraction > 0:
                self._epoch_reports.append((now, fraction))
                pace = timing.steady_pace(self._epoch_reports)
                if pace is not None:
                    self._pace_seconds = pace
                    self._pace_share = fraction - self._epoch_reports[0][1]
            if fraction >= 1.0:
                self._steps_done_at = now

    def _run(self) -> None:
        name_os_thread(f"fmnist-train-{self.job_id}")
        collected = False
        try:
            if not self._manager.acquire_slot(self, self._should_stop):
                with self._lock:
                    self._status = JobStatus.STOPPED
                return
            try:
                with self._lock:
                    self._status = JobStatus.RUNNING
                    self._epoch_started = time.monotonic()
                run_started = time.monotonic()
                with self._lock:
                    self._run_started = run_started
                # What the previous runs left goes before this one builds its model, and the collection
                # prices the one that ends this job: how long a full collection takes depends on this
                # process's heap (0.1 s here without gc.freeze, a few ms with it), not on the preset.
                finish = _collect_garbage() + FINISH_BEYOND_COLLECTION_SECONDS
                with self._lock:
                    self.estimate = dataclasses.replace(self.estimate, finish_seconds=finish)
                compiled = self._needs_compiling()
                result = train(self.config, self._dataset, on_epoch=self._on_epoch,
                               on_batch=self._on_batch, should_stop=self._should_stop, on_point=self._on_point)
                self.result = result
                self._dataset = None
                # Part of the job's finish: it is done (and its ETA at 0) only once this has run.
                _collect_garbage()
                collected = True
                finished = time.monotonic()
                self._manager.timings.record(
                    self.config, self._training_images, result.history, finished - run_started, phases=self._phases,
                    compiled=compiled,
                    finish_seconds=None if self._last_epoch_ended is None else finished - self._last_epoch_ended)
                with self._lock:
                    self._status = JobStatus.STOPPED if result.stopped_early else JobStatus.FINISHED
            finally:
                self._manager.release_slot(self)
        except Exception as error:
            logger.exception("job %s failed", self.job_id)
            with self._lock:
                self._status = JobStatus.FAILED
                self._error = f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else str(error)
        finally:
            self._dataset = None
            if not collected:
                _collect_garbage()
            self._done.set()


def _collect_garbage() -> float:
    """Training leaves TensorFlow objects in reference cycles that keep a small thread pool (named
    after the worker) alive until a full collection: collect, so nothing of a finished job outlives
    it. Cheap once the long-lived objects are gc.freeze()-d (the server does; without that, a
    collection took 0.1-4.6 s on these machines). Returns the seconds it took."""
    started = time.monotonic()
    gc.collect()
    return time.monotonic() - started


class JobManager:
    """At most ``max_concurrent`` jobs train at once; the rest queue, first come first served."""

    def __init__(self, max_concurrent: int | None = None, abandon_after_seconds: float | None = None,
                 disconnect_grace_seconds: float | None = None) -> None:
        if max_concurrent is None:
            max_concurrent = int(os.environ.get("FMNIST_MAX_CONCURRENT_TRAINING") or usable_cpu_count())
        if max_concurrent < 1:
            raise ValueError("At least one training job must be allowed to run.")
        if abandon_after_seconds is None:
            abandon_after_seconds = float(os.environ.get("FMNIST_ABANDON_AFTER_SECONDS") or 15)
        if disconnect_grace_seconds is None:
            disconnect_grace_seconds = float(os.environ.get("FMNIST_DISCONNECT_GRACE_SECONDS")
                                             or min(abandon_after_seconds, 5.0))
        self.max_concurrent = max_concurrent
        self.abandon_after_seconds = abandon_after_seconds
        """Without an ``owner_connected`` callable: stop a job after this long without a heartbeat."""
        self.disconnect_grace_seconds = disconnect_grace_seconds
        """With one: stop a job once its owner has been disconnected this long. A disconnect is certain
        (no throttled timer can fake it), so the grace only covers a quick reconnect, and a closed
        tab frees its slot well within ``abandon_after_seconds``."""
        self.timings = timing.RunTimings()
        """What this server has measured per preset: the estimates of new runs come from it."""
        self._condition = threading.Condition()
        self._running: dict[int, TrainingJob] = {}
        self._waiting: deque[TrainingJob] = deque()

    def submit(self, config: TrainingConfig, dataset: FashionMnist,
               owner_connected: Callable[[], bool] | None = None) -> TrainingJob:
        """Queue a job and start its thread; it trains as soon as a slot is free.

        ``owner_connected()`` says whether the job's owner is still there; without it, the owner
        must call :meth:`TrainingJob.heartbeat` more often than ``abandon_after_seconds``.
        """
        job = TrainingJob(config, dataset, self, owner_connected)
        with self._condition:
            self._waiting.append(job)
        job.thread.start()
        return job

    def _start_order(self) -> list[TrainingJob]:
        """The waiting jobs in the order they will start: first come, first served, except that a
        short run goes before longer ones that have not been overtaken ``MAX_OVERTAKES`` times."""
        order: list[TrainingJob] = []
        pending = list(self._waiting)
        overtaken = {job.job_id: job.overtaken for job in pending}
        while pending:
            chosen = pending[0]
            for index, job in enumerate(pending):
                if job.estimate.total_seconds < SHORT_RUN_SECONDS:
                    if all(overtaken[ahead.job_id] < MAX_OVERTAKES for ahead in pending[:index]):
                        chosen = job
                    break
            for ahead in pending[:pending.index(chosen)]:
                overtaken[ahead.job_id] += 1
            pending.remove(chosen)
            order.append(chosen)
        return order

    def queue_position(self, job: TrainingJob) -> int:
        """1 for the next job to run, 0 when the job is not waiting."""
        with self._condition:
            order = self._start_order()
            return order.index(job) + 1 if job in order else 0

    def expected_wait(self, job: TrainingJob) -> float | None:
        """About how many seconds until a queued job starts: the slots free up as the running jobs'
        ETAs say, and each job ahead in the queue then takes a slot for its estimate."""
        with self._condition:
            order = self._start_order()
            if job not in order:
                return None
            slots = sorted(running.remaining_seconds() for running in self._running.values())
            ahead = order[:order.index(job)]
        slots += [0.0] * (self.max_concurrent - len(slots))
        for other in ahead:
            slots.sort()
            slots[0] += other.estimate.total_seconds
        return min(slots)

    def counts(self) -> tuple[int, int]:
        """(running, waiting) right now."""
        with self._condition:
            return len(self._running), len(self._waiting)

    def wake_waiters(self) -> None:
        with self._condition:
            self._condition.notify_all()

    def acquire_slot(self, job: TrainingJob, should_give_up) -> bool:
        """Wait for a free slot in queue order; False if the job gave up (Stop, abandoned)."""
        with self._condition:
            while True:
                if should_give_up():
                    self._waiting.remove(job)
                    self._condition.notify_all()
                    return False
                if len(self._running) < self.max_concurrent and self._start_order()[0] is job:
                    for ahead in list(self._waiting)[:self._waiting.index(job)]:
                        ahead.overtaken += 1
                    self._waiting.remove(job)
                    self._running[job.job_id] = job
                    self._condition.notify_all()
                    return True
                self._condition.wait(timeout=0.5)

    def release_slot(self, job: TrainingJob) -> None:
        with self._condition:
            self._running.pop(job.job_id, None)
            self._condition.notify_all()
