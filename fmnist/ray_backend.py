"""Training jobs on a Ray cluster, behind the same interface as :class:`fmnist.jobs.JobManager`.

A :class:`RayJobManager` is a drop-in for the thread ``JobManager``: ``submit(config, dataset)``
returns a :class:`RayTrainingJob` with the same methods and attributes as
:class:`fmnist.jobs.TrainingJob` (``snapshot()``, ``request_stop()``, ``heartbeat()``, ``wait()``,
``done``, ``result``, ``config``, ``job_id``), and its snapshots are :class:`fmnist.jobs.JobSnapshot`.
Pages do not know which backend they use; :func:`make_job_manager` picks one from configuration.

How a job runs
    Each job is one Ray task (``max_retries=0``) that reserves ``num_cpus`` CPUs and calls
    :func:`fmnist.training.train` in a Ray worker process. Ray's scheduler is the queue: a task
    that finds no free CPU waits in Ray until one frees up; its place shown on the page is its
    place among *this server's* waiting jobs in submission order (Ray does not publish its own
    order; with several servers on one cluster, jobs of the others may also be ahead). Worker
    processes are reused between tasks, so TensorFlow is imported once per worker, not per job.

    The dataset is put into the object store once per manager (``ray.put``) and every job gets
    the same reference: workers on the same node read its arrays from shared memory, zero-copy.

    One small progress actor per server process (``ProgressBoard``, ``num_cpus=0``) collects the
    workers' reports (fire-and-forget calls) and holds the Stop flags. A single monitor thread in
    the server polls it for all active jobs every ``poll_seconds`` (0.25 s), so per-epoch and
    within-epoch reports reach the page well within a second; the worker's ``should_stop`` reads
    its flag from the board at most every ``stop_poll_seconds`` (0.2 s), i.e. once per step group.

    The trained model comes back as ``.keras`` bytes and is loaded into a Keras model in the
    server, so ``job.result`` is a normal :class:`fmnist.training.TrainingResult`.

Abandonment
    A job whose owner sent no heartbeat for ``abandon_after_seconds`` is told to stop (it ends
    after its step group and frees its CPUs); if it is still waiting for a worker it is cancelled
    in Ray's queue; if its worker does not end within ``abandon_grace_seconds`` it is force-
    cancelled (the worker process is killed and Ray frees the CPUs).

Faults (each ends only the job concerned, with a message for people; the manager stays usable)
    - The worker process dies (``kill -9``, a crash): the job is FAILED, "start it again to retry".
    - The worker runs out of memory (Ray's memory monitor kills it, or Python raises
      ``MemoryError``): FAILED, with a message saying so.
    - The cluster goes away mid-run (the board stops answering for ``cluster_timeout_seconds``,
      20 s; Ray's own 60 s limit, after which it would end the server process, is lifted):
      every active job is FAILED with a message; later submissions fail at once with the same
      message, and the server keeps serving the runs it already has.
      When this server started the instance itself (``local``) and its processes end, the server
      notices at once and stops using Ray (Ray would end a driver process that touches a dead
      node's object store). Limit: a driver cannot outlive the Ray node on its own machine, so
      with ``auto``/``host:port`` the server must run on a healthy node of the cluster (Ray ends
      the server process if that node's raylet dies); the cluster's other nodes may come and go.
    - The cluster is unreachable at server start: **refuse clearly**. :func:`make_job_manager`
      raises :class:`RayUnavailableError` with a message naming the address, and does not fall
      back to threads: a server configured for a cluster quietly training a classroom in its own
      process would be the overload Ray was set up to avoid, and hide the misconfiguration.
      Unset ``FMNIST_RAY_ADDRESS`` to run on threads on purpose.

Nothing here knows about Streamlit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import pathlib
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from fmnist import timing
from fmnist.data import FashionMnist
from fmnist.jobs import JobManager, JobSnapshot, JobStatus
from fmnist.training import DataSplit, EpochReport, TrainingConfig, TrainingPoint, TrainingResult

logger = logging.getLogger(__name__)

RAY_ADDRESS_VARIABLE = "FMNIST_RAY_ADDRESS"
REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parent.parent

WORKER_DIED_MESSAGE = ("The training worker stopped unexpectedly (its process was killed or crashed). "
                       "Nothing else was lost: start the run again to retry.")
OUT_OF_MEMORY_MESSAGE = ("The training worker ran out of memory. Try a smaller model, a smaller batch or a "
                         "training-sample limit, or start the run again when the cluster is less busy.")
CLUSTER_LOST_MESSAGE = ("The Ray cluster stopped answering, so this run was lost. Runs that had already "
                        "finished are kept; new runs cannot start until the server is restarted with a "
                        "working cluster.")


class RayUnavailableError(RuntimeError):
    """The configured Ray cluster cannot be reached (at start) or stopped answering."""


# ----------------------------------------------------------------------------- the cluster side

def _ray():
    import ray

    return ray


def _make_progress_board_class():
    ray = _ray()

    @ray.remote(num_cpus=0, max_restarts=0)
    class ProgressBoard:
        """The progress of one manager's jobs, written by the workers and read by the server."""

        def __init__(self) -> None:
            self._jobs: dict[int, dict[str, Any]] = {}

        def _job(self, job_id: int) -> dict[str, Any]:
            return self._jobs.setdefault(job_id, {"started": False, "pid": 0, "node": "", "epochs": [],
                                                  "points": [], "epoch": 0, "fraction": 0.0, "stop": False})

        def started(self, job_id: int, pid: int, node: str) -> None:
            self._job(job_id).update(started=True, pid=pid, node=node)

        def report_batch(self, job_id: int, epoch: int, fraction: float) -> None:
            self._job(job_id).update(epoch=epoch, fraction=fraction)

        def report_epoch(self, job_id: int, report: tuple) -> None:
            job = self._job(job_id)
            job["epochs"].append(report)
            job["fraction"] = 1.0

        def report_point(self, job_id: int, point: tuple) -> None:
            self._job(job_id)["points"].append(point)

        def request_stop(self, job_id: int) -> None:
            self._job(job_id)["stop"] = True

        def stop_requested(self, job_id: int) -> bool:
            return self._job(job_id)["stop"]

        def poll(self, known: dict[int, tuple[int, int]]) -> dict[int, dict[str, Any]]:
            """Each job's state, with only the epoch reports and points after the ``known[job_id]``
            = (epochs, points) first ones."""
            return {job_id: dict(self._job(job_id), epochs=self._job(job_id)["epochs"][epochs:],
                                 points=self._job(job_id)["points"][points:])
                    for job_id, (epochs, points) in known.items()}

        def forget(self, job_id: int) -> None:
            self._jobs.pop(job_id, None)

    return ProgressBoard


_shared_board: tuple[str, Any] | None = None
_shared_board_lock = threading.Lock()


def _progress_board() -> Any:
    """The process's progress board, created on first use for the current Ray connection.

    One per server process, shared by its managers: an actor takes a worker process of its own,
    and a new one per manager would take a worker that had TensorFlow imported already.
    """
    global _shared_board
    job_id = _ray().get_runtime_context().get_job_id()
    with _shared_board_lock:
        if _shared_board is None or _shared_board[0] != job_id:
            _shared_board = (job_id, _make_progress_board_class().remote())
        return _shared_board[1]


def _train_in_worker(job_id: int, config: TrainingConfig, dataset: FashionMnist, board: Any,
                     train_function: Callable[..., TrainingResult], stop_poll_seconds: float) -> dict[str, Any]:
    """The body of a job's Ray task: train, reporting to the board, and return the model as bytes."""
    import gc
    import socket

    ray = _ray()
    board.started.remote(job_id, os.getpid(), socket.gethostname())
    last_check = {"at": -1e9, "stop": False}

    def should_stop() -> bool:
        now = time.monotonic()
        if not last_check["stop"] and now - last_check["at"] >= stop_poll_seconds:
            last_check["at"] = now
            try:
                last_check["stop"] = bool(ray.get(board.stop_requested.remote(job_id), timeout=10))
            except Exception:  # noqa: BLE001 - the server's board is gone: nobody waits for this run
                logger.warning("job %s: the progress board does not answer; stopping", job_id)
                last_check["stop"] = True
        return last_check["stop"]

    def on_epoch(report: EpochReport) -> None:
        board.report_epoch.remote(job_id, dataclasses.astuple(report))

    def on_batch(epoch: int, fraction: float) -> None:
        board.report_batch.remote(job_id, epoch, fraction)

    def on_point(point: TrainingPoint) -> None:
        board.report_point.remote(job_id, dataclasses.astuple(point))

    result = train_function(config, dataset, on_epoch=on_epoch, on_batch=on_batch, should_stop=should_stop,
                            on_point=on_point)
    outcome = {"history": [dataclasses.astuple(report) for report in result.history],
               "train_indices": result.split.train_indices, "validation_indices": result.split.validation_indices,
               "stopped_early": result.stopped_early, "seconds": result.seconds,
               "checkpoints": result.checkpoints, **model_to_outcome(result.model)}
    # The worker process is reused by the next job: free this job's model and graphs now.
    del result
    with contextlib.suppress(Exception):
        import keras

        keras.backend.clear_session()
    gc.collect()
    return outcome


def _warm_up_worker() -> int:
    """A warm-up task: TensorFlow imported and the seed engine compiled in this worker process,
    which Ray then reuses for this server's jobs; returns the process id."""
    from fmnist import training

    training.warm_up()
    return os.getpid()


def model_to_outcome(model: Any) -> dict[str, Any]:
    """How a trained model travels back to the server: a Keras model as the bytes of its ``.keras``
    file (portable between TensorFlow builds, no pickled graph objects); any other model (e.g. a
    scikit-learn estimator) as itself, which Ray pickles with cloudpickle."""
    import keras

    if not isinstance(model, keras.Model):
        return {"model": model}
    with tempfile.TemporaryDirectory(prefix="fmnist-ray-") as directory:
        path = pathlib.Path(directory) / "model.keras"
        model.save(path)
        return {"model_keras": path.read_bytes()}


def model_from_outcome(outcome: dict[str, Any]) -> Any:
    """The model :func:`model_to_outcome` sent."""
    return load_keras_bytes(outcome["model_keras"]) if "model_keras" in outcome else outcome["model"]


def load_keras_bytes(model_bytes: bytes):
    """A Keras model from the bytes of a ``.keras`` file."""
    import keras

    with tempfile.TemporaryDirectory(prefix="fmnist-ray-") as directory:
        path = pathlib.Path(directory) / "model.keras"
        path.write_bytes(model_bytes)
        return keras.models.load_model(path)


def describe_failure(error: BaseException) -> str:
    """A message for people from what ``ray.get`` raised for a job's task."""
    ray = _ray()
    exceptions = ray.exceptions
    if isinstance(error, exceptions.OutOfMemoryError):
        return OUT_OF_MEMORY_MESSAGE
    if isinstance(error, exceptions.RayTaskError):
        cause = error.cause
        if isinstance(cause, MemoryError):
            return OUT_OF_MEMORY_MESSAGE
        if isinstance(cause, ValueError):
            return str(cause)
        if cause is not None:
            return f"{type(cause).__name__}: {cause}"
        return "The training task failed in its worker."
    if isinstance(error, (exceptions.WorkerCrashedError, exceptions.ActorDiedError)):
        return WORKER_DIED_MESSAGE
    if isinstance(error, (exceptions.NodeDiedError, exceptions.LocalRayletDiedError)):
        return ("The machine that ran this training left the Ray cluster. Nothing else was lost: "
                "start the run again to retry.")
    if isinstance(error, exceptions.TaskUnschedulableError):
        return f"No worker in the Ray cluster can run this training: {error}"
    return f"{type(error).__name__}: {error}"


# ----------------------------------------------------------------------------- the server side

class RayTrainingJob:
    """One training run as a Ray task; the same interface as :class:`fmnist.jobs.TrainingJob`."""

    _ids = itertools.count(1)

    def __init__(self, config: TrainingConfig, manager: RayJobManager,
                 owner_connected: Callable[[], bool] | None = None) -> None:
        self.job_id = next(self._ids)
        self.config = config
        self.result: TrainingResult | None = None
        self.worker_pid = 0
        """The worker's process id once the job has started (0 before): for logs and tests."""
        self.worker_node = ""
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None
        self._manager = manager
        self._owner_connected = owner_connected
        self._owner_gone_since: float | None = None
        self.training_images = 0
        """How many images the dataset has (for the manager's timings)."""
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._stop_requested = False
        self._abandoned_at: float | None = None
        self._status = JobStatus.QUEUED
        self._epochs: tuple[EpochReport, ...] = ()
        self._points: tuple[TrainingPoint, ...] = ()
        self._current_epoch = 0
        self._epoch_fraction = 0.0
        self._epoch_started = time.monotonic()
        self._error = ""
        self._last_heartbeat = time.monotonic()
        self._finishing = False
        self.reference = None
        """The Ray ObjectRef of the job's task."""

    # ------------------------------------------------------------- called by any thread
    def request_stop(self) -> None:
        """Stop after the current step group (or leave Ray's queue), keeping what was trained."""
        with self._lock:
            self._stop_requested = True
        self._manager._request_stop(self)

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

    @property
    def abandoned(self) -> bool:
        return self._abandoned_at is not None

    def snapshot(self) -> JobSnapshot:
        queue_position = self._manager.queue_position(self)
        with self._lock:
            return JobSnapshot(job_id=self.job_id, status=self._status, queue_position=queue_position,
                               epochs=self._epochs, current_epoch=self._current_epoch,
                               epoch_fraction=self._epoch_fraction,
                               seconds_in_epoch=time.monotonic() - self._epoch_started,
                               total_epochs=self.config.epochs, error=self._error,
                               stop_requested=self._stop_requested, points=self._points,
                               abandoned=self.abandoned, waiting_for_worker=self._status is JobStatus.QUEUED)

    @property
    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    @property
    def known_reports(self) -> tuple[int, int]:
        """How many epoch reports and points the server has: the board sends only newer ones."""
        with self._lock:
            return len(self._epochs), len(self._points)

    # ------------------------------------------------------------- called by the manager's monitor
    def _owner_gone(self, abandon_after_seconds: float, disconnect_grace_seconds: float) -> bool:
        """As the thread backend decides: disconnected for the grace (with ``owner_connected``),
        else no heartbeat for ``abandon_after_seconds``."""
        now = time.monotonic()
        if self._owner_connected is not None:
            try:
                connected = bool(self._owner_connected())
            except Exception:  # noqa: BLE001 - a broken check must not end the run
                connected = True
            if connected:
                self._owner_gone_since = None
                return False
            if self._owner_gone_since is None:
                self._owner_gone_since = now
            return now - self._owner_gone_since > disconnect_grace_seconds
        with self._lock:
            return now - self._last_heartbeat > abandon_after_seconds

    def _update_progress(self, state: dict[str, Any]) -> None:
        with self._lock:
            if self._status is not JobStatus.QUEUED and self._status is not JobStatus.RUNNING:
                return
            if state["started"] and self._status is JobStatus.QUEUED:
                self._status = JobStatus.RUNNING
                self.started_at = time.monotonic()
                self._epoch_started = time.monotonic()
                self.worker_pid = state["pid"]
                self.worker_node = state["node"]
            if state["epoch"] != self._current_epoch:
                self._epoch_started = time.monotonic()
            self._current_epoch = state["epoch"]
            self._epoch_fraction = state["fraction"]
            if state["epochs"]:
                self._epochs += tuple(EpochReport(*report) for report in state["epochs"])
            if state["points"]:
                self._points += tuple(TrainingPoint(*point) for point in state["points"])

    def _end(self, status: JobStatus, error: str = "", result: TrainingResult | None = None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.result = result
            if result is not None:
                self._epochs = tuple(result.history)
                self._epoch_fraction = 1.0 if result.history else self._epoch_fraction
            self._status = status
            self._error = error
        self._done.set()



class RayJobManager:
    """Submits training jobs to a Ray cluster; the same interface as :class:`fmnist.jobs.JobManager`.

    ``ray.init`` must have been called (see :func:`connect`). ``num_cpus`` is what each job
    reserves; ``max_concurrent`` is what the cluster could run at once (for display only: Ray
    decides who runs).
    """

    backend = "ray"

    def __init__(self, num_cpus: float = 1, abandon_after_seconds: float | None = None,
                 disconnect_grace_seconds: float | None = None, poll_seconds: float = 0.25, stop_poll_seconds: float = 0.2,
                 abandon_grace_seconds: float = 5.0, cluster_timeout_seconds: float = 20.0,
                 board_start_seconds: float = 180.0,
                 train_function: Callable[..., TrainingResult] | None = None) -> None:
        ray = _ray()
        if not ray.is_initialized():
            raise RayUnavailableError("Ray is not connected: call fmnist.ray_backend.connect() first.")
        if not num_cpus > 0:
            raise ValueError(f"Each job must reserve some CPU, not {num_cpus!r}.")
        if abandon_after_seconds is None:
            abandon_after_seconds = float(os.environ.get("FMNIST_ABANDON_AFTER_SECONDS") or 15)
        if disconnect_grace_seconds is None:
            disconnect_grace_seconds = float(os.environ.get("FMNIST_DISCONNECT_GRACE_SECONDS")
                                             or min(abandon_after_seconds, 5.0))
        if train_function is None:
            from fmnist.training import train as train_function
        self.num_cpus = num_cpus
        self.abandon_after_seconds = abandon_after_seconds
        self.disconnect_grace_seconds = disconnect_grace_seconds
        self.timings = timing.RunTimings()
        """What this server has measured per preset, as the thread manager keeps it (the pages'
        estimates come from it); fed by the runs that end here."""
        self.poll_seconds = poll_seconds
        self.stop_poll_seconds = stop_poll_seconds
        self.abandon_grace_seconds = abandon_grace_seconds
        self.cluster_timeout_seconds = cluster_timeout_seconds
        self.board_start_seconds = board_start_seconds
        self.dataset_puts = 0
        """How many datasets this manager has put into the object store (one per distinct dataset)."""
        self.unavailable = ""
        """Non-empty once the cluster stopped answering: why new jobs cannot start."""
        self._train_function = train_function
        self._condition = threading.Condition()
        self._jobs: dict[int, RayTrainingJob] = {}
        self._dataset_references: list[tuple[FashionMnist, Any]] = []
        self._board = _progress_board()
        self._remote_train = ray.remote(_train_in_worker).options(num_cpus=num_cpus, max_retries=0,
                                                                   name="fmnist-training")
        self._closed = False
        self._monitor = threading.Thread(target=self._monitor_loop, name="fmnist-ray-monitor", daemon=True)
        self._monitor.start()

    # ------------------------------------------------------------- the JobManager interface
    @property
    def max_concurrent(self) -> int:
        """How many jobs the cluster could run at once right now (display only)."""
        with contextlib.suppress(Exception):
            return max(1, int(_ray().cluster_resources().get("CPU", 0) // self.num_cpus))
        return 1

    def submit(self, config: TrainingConfig, dataset: FashionMnist,
               owner_connected: Callable[[], bool] | None = None) -> RayTrainingJob:
        """Send a job to Ray; it waits in Ray's queue until a worker with ``num_cpus`` CPUs is free."""
        job = RayTrainingJob(config, self, owner_connected)
        job.training_images = len(dataset.x_train)
        if not self.unavailable and not _local_ray_processes_alive():
            self._cluster_lost(RayUnavailableError("the local Ray processes ended"))
        with self._condition:
            if self.unavailable:
                job._end(JobStatus.FAILED, self.unavailable)
                return job
            self._jobs[job.job_id] = job
            try:
                dataset_reference = self._dataset_reference(dataset)
                job.reference = self._remote_train.remote(job.job_id, config, dataset_reference, self._board,
                                                          self._train_function, self.stop_poll_seconds)
            except Exception as error:  # shown on the page; the server goes on
                logger.exception("job %s could not be submitted", job.job_id)
                job._end(JobStatus.FAILED, f"The job could not be sent to the Ray cluster: {error}")
                self._jobs.pop(job.job_id, None)
                return job
            self._condition.notify_all()
        return job

    def warm_up_workers(self, count: int | None = None) -> list:
        """Start ``count`` workers (default: as many as can train at once) that import TensorFlow
        and compile the seed engine, as the thread backend's server does at start, so that the
        first runs do not pay for it. The warm-up tasks reserve no CPU: a run that arrives
        meanwhile is not held back in the queue by them. Returns the tasks' references (their
        results: process ids)."""
        count = self.max_concurrent if count is None else count
        warm_up = _ray().remote(_warm_up_worker).options(num_cpus=0, max_retries=0, name="fmnist-warm-up")
        return [warm_up.remote() for _ in range(count)]

    def queue_position(self, job: RayTrainingJob) -> int:
        """1 for this server's next waiting job, 0 when the job is not waiting (a lower bound of
        its place in Ray's queue: other servers' jobs may wait too)."""
        with self._condition:
            waiting = [other.job_id for other in self._jobs.values() if other.status is JobStatus.QUEUED]
        return waiting.index(job.job_id) + 1 if job.job_id in waiting else 0

    def counts(self) -> tuple[int, int]:
        """(running, waiting) among this server's jobs right now."""
        with self._condition:
            statuses = [job.status for job in self._jobs.values()]
        return statuses.count(JobStatus.RUNNING), statuses.count(JobStatus.QUEUED)

    def wake_waiters(self) -> None:
        with self._condition:
            self._condition.notify_all()

    def close(self) -> None:
        """Stop the monitor and cancel the jobs still active (for tests and server shutdown)."""
        with self._condition:
            self._closed = True
            active = [job for job in self._jobs.values() if not job.done]
            self._condition.notify_all()
        for job in active:
            with contextlib.suppress(Exception):
                _ray().cancel(job.reference, force=True)
            job._end(JobStatus.STOPPED, "The server shut down.")
        self._monitor.join(10)

    # ------------------------------------------------------------- internals
    def _dataset_reference(self, dataset: FashionMnist):
        for known, reference in self._dataset_references:
            if known is dataset:
                return reference
        reference = _ray().put(dataset)
        self.dataset_puts += 1
        self._dataset_references = [*self._dataset_references[-1:], (dataset, reference)]  # keep at most two
        return reference

    def _request_stop(self, job: RayTrainingJob) -> None:
        with contextlib.suppress(Exception):
            self._board.request_stop.remote(job.job_id)
        if job.status is JobStatus.QUEUED and job.reference is not None:
            with contextlib.suppress(Exception):
                _ray().cancel(job.reference)  # leave Ray's queue; a task that just started stops on its flag
        self.wake_waiters()

    def _monitor_loop(self) -> None:
        created = time.monotonic()
        last_answer: float | None = None  # the board's first answer can take long: its process starts
        while True:
            with self._condition:
                while not self._closed and not self._jobs:
                    self._condition.wait(timeout=1.0)
                if self._closed:
                    return
            last_answer = self._monitor_once(created, last_answer)
            time.sleep(self.poll_seconds)

    def _monitor_once(self, created: float, last_answer: float | None) -> float | None:
        """One round: fetch every active job's progress, apply abandonment, collect ended tasks.
        A method of its own, so that no ended job stays referenced while the monitor sleeps."""
        ray = _ray()
        with self._condition:
            active = [job for job in self._jobs.values() if not job.done and job.reference is not None]
        if not active:
            return last_answer
        try:
            states = ray.get(self._board.poll.remote({job.job_id: job.known_reports for job in active}),
                             timeout=max(self.poll_seconds * 4, 1.0))
            last_answer = time.monotonic()
        except Exception as error:  # noqa: BLE001 - any failure to hear from the board counts
            silent_since, limit = ((last_answer, self.cluster_timeout_seconds) if last_answer is not None
                                   else (created, self.board_start_seconds))
            if time.monotonic() - silent_since > limit:
                self._cluster_lost(error)
                return last_answer
            states = {}
        for job in active:
            if job.job_id in states:
                job._update_progress(states[job.job_id])
            self._check_abandoned(job)
        waiting = [job for job in active if not job._finishing]
        if waiting:
            ready, _ = ray.wait([job.reference for job in waiting], num_returns=len(waiting), timeout=0,
                                fetch_local=False)
            ready_ids = {reference.hex() for reference in ready}
            for job in waiting:
                if job.reference.hex() in ready_ids:
                    job._finishing = True
                    threading.Thread(target=self._finish, args=(job,), name=f"fmnist-ray-finish-{job.job_id}",
                                     daemon=True).start()
        return last_answer

    def _check_abandoned(self, job: RayTrainingJob) -> None:
        if job._finishing:
            return
        if job._abandoned_at is None:
            if job._owner_gone(self.abandon_after_seconds, self.disconnect_grace_seconds):
                logger.info("job %s: its owner is gone; cancelling it", job.job_id)
                job._abandoned_at = time.monotonic()
                job.request_stop()
            return
        if time.monotonic() - job._abandoned_at > self.abandon_grace_seconds:
            logger.info("job %s: still running %.0f s after it was abandoned; killing its worker",
                        job.job_id, self.abandon_grace_seconds)
            with contextlib.suppress(Exception):
                _ray().cancel(job.reference, force=True)

    def _finish(self, job: RayTrainingJob) -> None:
        ray = _ray()
        try:
            outcome = ray.get(job.reference)
            history = [EpochReport(*report) for report in outcome["history"]]
            result = TrainingResult(config=job.config, model=model_from_outcome(outcome), history=history,
                                    split=DataSplit(outcome["train_indices"], outcome["validation_indices"]),
                                    stopped_early=outcome["stopped_early"], seconds=outcome["seconds"],
                                    checkpoints=outcome.get("checkpoints"))
            self.timings.record(job.config, job.training_images, history, outcome["seconds"])
            job._end(JobStatus.STOPPED if result.stopped_early else JobStatus.FINISHED, result=result)
        except Exception as error:  # noqa: BLE001 - every failure becomes a message on the page
            if job._stop_requested and isinstance(error, (ray.exceptions.TaskCancelledError,
                                                          ray.exceptions.WorkerCrashedError)):
                job._end(JobStatus.STOPPED)
            elif not _local_ray_processes_alive():
                self._cluster_lost(error)
            else:
                logger.warning("job %s failed: %s", job.job_id, error)
                job._end(JobStatus.FAILED, describe_failure(error))
        finally:
            with contextlib.suppress(Exception):
                self._board.forget.remote(job.job_id)
            self._forget(job)

    def _cluster_lost(self, error: BaseException) -> None:
        logger.error("the Ray cluster stopped answering: %s", error)
        with self._condition:
            self.unavailable = CLUSTER_LOST_MESSAGE
            active = [job for job in self._jobs.values() if not job.done]
        for job in active:
            job._end(JobStatus.FAILED, CLUSTER_LOST_MESSAGE)
            self._forget(job)

    def _forget(self, job: RayTrainingJob) -> None:
        """An ended job leaves the manager: its result belongs to its owner alone."""
        with self._condition:
            self._jobs.pop(job.job_id, None)
            self._condition.notify_all()


def _local_ray_processes_alive() -> bool:
    """False once a process of the Ray instance this server started (``local``) has ended.

    The server must then stop using Ray at once: Ray ends a driver process that touches the object
    store of a dead local node. For a cluster it only joined, this server cannot tell (True).
    """
    with contextlib.suppress(Exception):
        node = _ray()._private.worker._global_node
        if node is not None and node.head:
            for kind in ("gcs_server", "raylet"):
                for info in node.all_processes.get(kind, []):
                    if info.process is not None and info.process.poll() is not None:
                        return False
    return True


# ----------------------------------------------------------------------------- choosing a backend

def connect(address: str, num_cpus: int | None = None, timeout_seconds: float = 60.0) -> None:
    """Connect this process to Ray: ``auto``, ``host:port``, or ``local`` (a new local instance with
    ``num_cpus`` CPUs, default all usable cores, on the loopback address, without dashboard).

    Usage statistics are off, so start-up does not try to reach the network. Raises
    :class:`RayUnavailableError` with a message for people when the cluster cannot be reached:
    at once when nothing listens at ``host:port``, else after ``timeout_seconds`` (``ray.init``
    itself waits forever for a cluster that does not answer).
    """
    address = (address or "").strip()
    if not address:
        raise ValueError("Give a Ray address: auto, host:port, or local.")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray ends a driver process whose cluster stays unreachable for 60 s; this process is the web
    # server, which must outlive its cluster: it fails the active jobs and keeps serving instead.
    os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(365 * 24 * 3600))
    if address == "local":
        # A single-machine instance: Ray then uses the loopback address for its node (read when
        # ray is first imported; the server imports it only here).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    advice = f"Start it, fix {RAY_ADDRESS_VARIABLE} (or --ray), or unset it to train in this server's threads."
    if address not in ("local", "auto"):
        _check_listening(address, advice)
    ray = _ray()
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "configure_logging": False, "ignore_reinit_error": True}
    if address == "local":
        if num_cpus is None:
            num_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        options.update(num_cpus=num_cpus, runtime_env={"env_vars": {"PYTHONPATH": str(REPOSITORY_ROOT)}})
    else:
        options["address"] = address
    if address == "local":
        _start_local_instance(options, advice)
        return
    outcome: dict[str, BaseException] = {}

    def initialise() -> None:
        try:
            ray.init(**options)
        except BaseException as error:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = error

    starter = threading.Thread(target=initialise, name="fmnist-ray-connect", daemon=True)
    starter.start()
    starter.join(timeout_seconds)
    if starter.is_alive():
        raise RayUnavailableError(f"The Ray cluster at {address!r} did not answer within {timeout_seconds:.0f} s. "
                                  f"{advice}")
    if "error" in outcome:
        error = outcome["error"]
        raise RayUnavailableError(f"The Ray cluster at {address!r} cannot be reached "
                                  f"({type(error).__name__}: {error}). {advice}") from error


def _start_local_instance(options: dict[str, Any], advice: str) -> None:
    """``ray.init`` for a new local instance, in a thread that lives as long as this process.

    Ray starts its processes with ``PR_SET_PDEATHSIG``, which kills them when the *thread* that
    started them ends; a Streamlit script thread ends after every rerun. So the instance is
    started from a thread of its own that then waits forever (a daemon: it ends with the process).
    """
    started = threading.Event()
    outcome: dict[str, BaseException] = {}

    def start_and_keep() -> None:
        try:
            _ray().init(**options)
        except Exception as error:  # noqa: BLE001 - Ray raises several kinds; all mean "could not start"
            outcome["error"] = error
        started.set()
        threading.Event().wait()

    threading.Thread(target=start_and_keep, name="fmnist-ray-local", daemon=True).start()
    started.wait()
    if "error" in outcome:
        error = outcome["error"]
        raise RayUnavailableError(f"A local Ray instance could not start ({type(error).__name__}: "
                                  f"{error}). {advice}") from error


def _check_listening(address: str, advice: str) -> None:
    """Refuse at once when nothing accepts connections at ``host:port``."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"A Ray address is auto, host:port or local, not {address!r}.")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as error:
        raise RayUnavailableError(f"Nothing answers at the Ray address {address!r} ({error}). {advice}") from error


def configured_address() -> str:
    """The Ray address from ``FMNIST_RAY_ADDRESS``, or "" for the in-process threads."""
    return os.environ.get(RAY_ADDRESS_VARIABLE, "").strip()


def make_job_manager(address: str | None = None, **options: Any) -> JobManager | RayJobManager:
    """The job manager chosen by configuration: ``address`` (the CLI's ``--ray``), else
    ``FMNIST_RAY_ADDRESS``; unset or empty gives today's thread :class:`fmnist.jobs.JobManager`.

    Extra ``options`` go to the chosen manager. Raises :class:`RayUnavailableError` when a cluster
    is configured but cannot be reached (no silent fall-back: see the module docstring).
    """
    address = configured_address() if address is None else address.strip()
    if not address:
        return JobManager(**options)
    connect(address)
    return RayJobManager(**options)
