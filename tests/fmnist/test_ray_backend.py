"""Tests for fmnist.ray_backend: jobs as Ray tasks behind the JobManager interface.

One local Ray instance (2 CPUs, loopback only, no dashboard, no usage statistics) is started
for the module. Jobs train for real on the conftest's ``tiny_dataset`` in Ray worker processes.
"One job waits while another runs" is arranged with jobs that reserve both CPUs of the instance
(the same situation as 1-CPU jobs on a 1-CPU instance, without a second Ray instance). Faults are
real: a worker is killed with SIGKILL; a worker's training raises a real ``MemoryError``.
"""

import gc
import json
import os
import signal
import socket
import sys
import threading
import time
import weakref

import numpy as np
import pytest

from fmnist import evaluation, jobs, ray_backend
from fmnist.training import TrainingConfig, TrainingResult

# Before Ray is imported: no usage statistics, and a single-machine instance on the loopback address.
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ray = pytest.importorskip("ray")

pytestmark = pytest.mark.ray

WAIT_SECONDS = 90
SHORT = TrainingConfig(epochs=2)
LONG = TrainingConfig(epochs=500)

# The wrappers below run in Ray workers, which cannot import this test module by name.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def wait_until(condition, timeout: float = WAIT_SECONDS, message: str = "condition", interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    # From a thread that ends at once, as a Streamlit script thread does after its run: the
    # instance must outlive it (Ray kills its processes when the thread that started them ends).
    starter = threading.Thread(target=ray_backend.connect, args=("local",), kwargs={"num_cpus": 2})
    starter.start()
    starter.join()
    assert ray.is_initialized()
    yield
    ray.shutdown()


@pytest.fixture
def make_manager():
    managers = []

    def make(**options) -> ray_backend.RayJobManager:
        manager = ray_backend.RayJobManager(**options)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.close()


def heartbeat_until_done(*watched, timeout: float = WAIT_SECONDS) -> None:
    """Wait for the jobs to end, sending their heartbeats meanwhile (as their page would)."""
    def all_done() -> bool:
        for job in watched:
            job.heartbeat()
        return all(job.done for job in watched)

    wait_until(all_done, timeout, "the jobs to end", interval=0.1)


def train_and_log_reports(log_path: str):
    """A train function for the worker that writes the wall time of each report and of the first
    True from ``should_stop`` to ``log_path`` (JSON lines), to measure latencies from the server."""
    def train_logged(config, dataset, on_epoch=None, on_batch=None, should_stop=None, on_point=None):
        from fmnist.training import train

        def log(kind, value):
            with open(log_path, "a") as log_file:
                log_file.write(json.dumps({"kind": kind, "value": value, "at": time.time()}) + "\n")

        stopped = []

        def logged_epoch(report):
            log("epoch", report.epoch)
            on_epoch(report)

        def logged_stop():
            answer = should_stop()
            if answer and not stopped:
                stopped.append(True)
                log("stop", 0)
            return answer

        return train(config, dataset, on_epoch=logged_epoch, on_batch=on_batch, should_stop=logged_stop,
                     on_point=on_point)

    return train_logged


def read_log(log_path) -> list[dict]:
    with open(log_path) as log_file:
        return [json.loads(line) for line in log_file]


def test_connects_on_loopback_without_usage_statistics():
    context = ray.get_runtime_context()
    assert context.gcs_address.startswith("127.0.0.1:")
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert ray.cluster_resources()["CPU"] == 2


def test_job_finishes_with_a_model_usable_for_prediction(make_manager, tiny_dataset):
    manager = make_manager()
    job = manager.submit(SHORT, tiny_dataset)
    heartbeat_until_done(job)
    snapshot = job.snapshot()
    assert snapshot.status is jobs.JobStatus.FINISHED, snapshot.error
    assert isinstance(job.result, TrainingResult)
    assert [report.epoch for report in snapshot.epochs] == [1, 2]
    assert job.result.history == list(snapshot.epochs)
    assert len(job.result.split.validation_indices) == 120
    probabilities = evaluation.predict_probabilities(job.result.model, tiny_dataset.x_test)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == tiny_dataset.y_test))
    assert accuracy > 0.5
    assert manager.counts() == (0, 0)
    # What the pages read besides the model: the live curve's points, the epoch time machine's
    # weights, and the server's timings for the next estimates.
    assert snapshot.points and {point.epoch for point in snapshot.points} <= {1, 2}
    assert job.result.checkpoints.epochs == [1, 2]
    images = len(tiny_dataset.x_train)
    assert manager.timings.estimate(SHORT, images) != jobs.timing.RunTimings().estimate(SHORT, images)
    # The manager keeps no ended job: its model belongs to its owner alone and goes with it.
    model = weakref.ref(job.result.model)
    del job, probabilities
    wait_until(lambda: gc.collect() is not None and model() is None, timeout=10, message="the model to be freed")


def test_warmed_up_workers_have_tensorflow_ready_for_the_jobs(make_manager, tiny_dataset):
    manager = make_manager()
    warmed = set(ray.get(manager.warm_up_workers(), timeout=WAIT_SECONDS * 2))
    assert len(warmed) == 2  # both CPUs of the instance, one worker each
    job = manager.submit(SHORT, tiny_dataset)
    heartbeat_until_done(job)
    assert job.snapshot().status is jobs.JobStatus.FINISHED, job.snapshot().error
    assert job.worker_pid in warmed


def test_a_second_job_waits_for_a_worker_then_runs(make_manager, tiny_dataset):
    manager = make_manager(num_cpus=2)  # each job takes the whole 2-CPU instance
    first = manager.submit(LONG, tiny_dataset)
    wait_until(lambda: first.heartbeat() or first.snapshot().status is jobs.JobStatus.RUNNING, message="first job runs")
    second = manager.submit(SHORT, tiny_dataset)
    time.sleep(1.5)  # long enough for Ray to have started it, had a CPU been free
    waiting = second.snapshot()
    assert waiting.status is jobs.JobStatus.QUEUED
    assert waiting.queue_position == 1
    assert first.snapshot().queue_position == 0
    assert manager.counts() == (1, 1)
    assert waiting.waiting_for_worker
    assert not first.snapshot().waiting_for_worker
    first.request_stop()
    heartbeat_until_done(first, second)
    assert first.snapshot().status is jobs.JobStatus.STOPPED
    assert second.snapshot().status is jobs.JobStatus.FINISHED, second.snapshot().error
    assert second.result.model is not None


def test_reports_reach_the_server_within_a_second_and_stop_within_a_step_group(make_manager, tiny_dataset, tmp_path):
    log_path = str(tmp_path / "reports.jsonl")
    manager = make_manager(train_function=train_and_log_reports(log_path))
    job = manager.submit(TrainingConfig(epochs=500, preset="mlp"), tiny_dataset)
    seen_at: dict[int, float] = {}
    deadline = time.monotonic() + WAIT_SECONDS
    while len(seen_at) < 8 and time.monotonic() < deadline:
        job.heartbeat()
        for report in job.snapshot().epochs:
            seen_at.setdefault(report.epoch, time.time())
        time.sleep(0.02)
    assert len(seen_at) >= 8, "the job reported fewer than 8 epochs"
    stop_asked = time.time()
    job.request_stop()
    heartbeat_until_done(job)
    log = read_log(log_path)
    reported_at = {entry["value"]: entry["at"] for entry in log if entry["kind"] == "epoch"}
    latencies = [seen_at[epoch] - reported_at[epoch] for epoch in seen_at if epoch in reported_at and epoch > 1]
    stop_latency = next(entry["at"] for entry in log if entry["kind"] == "stop") - stop_asked
    print(f"report latency max {max(latencies):.3f} s, mean {np.mean(latencies):.3f} s; "
          f"stop reached the worker after {stop_latency:.3f} s")
    assert max(latencies) < 1.0
    assert stop_latency < 1.0
    snapshot = job.snapshot()
    assert snapshot.status is jobs.JobStatus.STOPPED
    assert job.result.stopped_early and job.result.model is not None


def ignore_stop_forever(config, dataset, on_epoch=None, on_batch=None, should_stop=None, on_point=None):
    """A worker that never looks at Stop: only killing it ends it."""
    while True:
        time.sleep(0.1)


def test_an_abandoned_job_is_cancelled_and_frees_its_cpus(make_manager, tiny_dataset):
    manager = make_manager(num_cpus=2, abandon_after_seconds=1.0)
    abandoned = manager.submit(LONG, tiny_dataset)  # nobody sends heartbeats for it
    assert abandoned.wait(WAIT_SECONDS)
    assert abandoned.snapshot().status is jobs.JobStatus.STOPPED
    assert abandoned.abandoned
    stubborn_manager = make_manager(num_cpus=2, abandon_after_seconds=1.0, abandon_grace_seconds=1.0,
                                    train_function=ignore_stop_forever)
    stubborn = stubborn_manager.submit(LONG, tiny_dataset)
    assert stubborn.wait(WAIT_SECONDS)
    assert stubborn.snapshot().status is jobs.JobStatus.STOPPED
    follower = manager.submit(SHORT, tiny_dataset)  # needs both CPUs: only runs if they were freed
    heartbeat_until_done(follower)
    assert follower.snapshot().status is jobs.JobStatus.FINISHED, follower.snapshot().error


def test_a_killed_worker_fails_the_job_with_a_message_and_a_retry_works(make_manager, tiny_dataset):
    manager = make_manager()
    job = manager.submit(LONG, tiny_dataset)
    wait_until(lambda: job.heartbeat() or (job.worker_pid and job.snapshot().epochs), message="the job trains")
    os.kill(job.worker_pid, signal.SIGKILL)
    heartbeat_until_done(job)
    snapshot = job.snapshot()
    assert snapshot.status is jobs.JobStatus.FAILED
    assert snapshot.error == ray_backend.WORKER_DIED_MESSAGE
    assert job.result is None
    retry = manager.submit(SHORT, tiny_dataset)
    heartbeat_until_done(retry)
    assert retry.snapshot().status is jobs.JobStatus.FINISHED, retry.snapshot().error


def run_out_of_memory(config, dataset, on_epoch=None, on_batch=None, should_stop=None, on_point=None):
    """Asks for far more memory than any machine has: numpy raises a real MemoryError."""
    np.empty(2**50, dtype=np.uint8)


def test_a_worker_out_of_memory_fails_the_job_with_a_message(make_manager, tiny_dataset):
    manager = make_manager(train_function=run_out_of_memory)
    job = manager.submit(SHORT, tiny_dataset)
    heartbeat_until_done(job)
    assert job.snapshot().status is jobs.JobStatus.FAILED
    assert job.snapshot().error == ray_backend.OUT_OF_MEMORY_MESSAGE
    assert ray_backend.describe_failure(ray.exceptions.OutOfMemoryError("node low on memory")) \
        == ray_backend.OUT_OF_MEMORY_MESSAGE


def train_a_scikit_learn_model(config, dataset, on_epoch=None, on_batch=None, should_stop=None, on_point=None):
    """A run whose model is not a Keras model (as the "sgd-classifier" preset's): it must come back too."""
    from sklearn.linear_model import SGDClassifier

    from fmnist.training import EpochReport, split_training_data

    split = split_training_data(config, dataset.y_train)
    images = dataset.x_train[split.train_indices].reshape(len(split.train_indices), -1) / 255.0
    model = SGDClassifier(random_state=config.seed).fit(images, dataset.y_train[split.train_indices])
    report = EpochReport(epoch=1, loss=0.0, accuracy=float(model.score(images, dataset.y_train[split.train_indices])),
                         val_loss=0.0, val_accuracy=0.0, seconds=0.1)
    on_epoch(report)
    return TrainingResult(config=config, model=model, history=[report], split=split, stopped_early=False, seconds=0.1)


def test_a_model_that_is_not_a_keras_model_comes_back_as_itself(make_manager, tiny_dataset):
    manager = make_manager(train_function=train_a_scikit_learn_model)
    job = manager.submit(TrainingConfig(epochs=1), tiny_dataset)
    heartbeat_until_done(job)
    assert job.snapshot().status is jobs.JobStatus.FINISHED, job.snapshot().error
    flat_test_images = tiny_dataset.x_test.reshape(len(tiny_dataset.x_test), -1) / 255.0
    assert job.result.model.predict(flat_test_images).shape == (len(tiny_dataset.x_test),)
    assert job.result.model.score(flat_test_images, tiny_dataset.y_test) > 0.3


def test_the_dataset_goes_into_the_object_store_once_for_several_jobs(make_manager, tiny_dataset, monkeypatch):
    puts = []
    real_put = ray.put

    def counting_put(value, *arguments, **keywords):
        puts.append(value)
        return real_put(value, *arguments, **keywords)

    monkeypatch.setattr(ray, "put", counting_put)
    manager = make_manager()
    started = [manager.submit(TrainingConfig(epochs=1, seed=seed), tiny_dataset) for seed in range(3)]
    heartbeat_until_done(*started)
    for job in started:
        assert job.snapshot().status is jobs.JobStatus.FINISHED, job.snapshot().error
    assert [value is tiny_dataset for value in puts] == [True]
    assert manager.dataset_puts == 1


def test_make_job_manager_without_an_address_is_the_thread_manager(monkeypatch):
    monkeypatch.delenv(ray_backend.RAY_ADDRESS_VARIABLE, raising=False)
    assert type(ray_backend.make_job_manager()) is jobs.JobManager
    manager = ray_backend.make_job_manager("local")  # already connected: reuses this process's instance
    try:
        assert isinstance(manager, ray_backend.RayJobManager)
    finally:
        manager.close()


def test_an_unreachable_cluster_is_refused_at_once_with_a_message():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(ray_backend.RayUnavailableError, match="Nothing answers at the Ray address"):
        ray_backend.make_job_manager(address)
    assert time.monotonic() - started < 10
    with pytest.raises(ValueError, match="host:port"):
        ray_backend.make_job_manager("no port here")


def test_the_cli_trains_on_ray_with_the_same_report(monkeypatch, tiny_dataset, capsys):
    from fmnist import cli

    monkeypatch.setattr(cli, "load_dataset", lambda **_: tiny_dataset)
    assert cli.main(["train", "--ray", "local", "--epochs", "2", "--json"]) == 0
    captured = capsys.readouterr()
    outcome = json.loads(captured.out.strip().splitlines()[-1])
    assert len(outcome["history"]) == 2
    assert outcome["test_accuracy"] > 0.5
    assert "Epoch 2/2" in captured.err


def test_the_cli_refuses_an_unreachable_cluster_with_a_message(monkeypatch, tiny_dataset, capsys):
    from fmnist import cli

    monkeypatch.setattr(cli, "load_dataset", lambda **_: tiny_dataset)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    assert cli.main(["train", "--ray", address]) == 1
    assert f"Nothing answers at the Ray address '{address}'" in capsys.readouterr().err
