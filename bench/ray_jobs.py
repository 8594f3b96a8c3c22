"""Job latencies of the two backends side by side: the thread ``JobManager`` and the Ray one.

``python -m bench.ray_jobs [--address local]`` prints one JSON line. For each backend, on the
real Fashion-MNIST data and the seed preset:

- ``*_job_start_cold_seconds``: submit to the first progress report of the first job, after the
  warm-up each backend's server does when it starts (threads: ``training.warm_up()`` in the
  process, ``*_warm_up_seconds``; Ray: ``RayJobManager.warm_up_workers()``, TensorFlow in the workers);
- ``*_job_start_seconds``: the same for the next jobs (median);
- ``*_report_latency_seconds`` (and ``_mean_``): the time from a worker's epoch report to the
  server's snapshot showing it, at most (and on average);
- ``*_stop_seconds``: request_stop to the job's end;
- ``ray_init_seconds``: connecting (for ``local``: starting the instance).

Wall times, so they grow on a busy machine; ``*_cpu_seconds`` is the server process's CPU time
over the whole backend's run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import statistics
import tempfile
import time

from fmnist import data, jobs, ray_backend, training
from fmnist.training import TrainingConfig

JOB = TrainingConfig(epochs=500, sample_limit=12000)


class LoggedTrain:
    """``training.train`` that appends the wall time of each epoch report to a file (the worker
    may be another process; on one machine the clocks agree)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = str(path)

    def __call__(self, config, dataset, on_epoch=None, on_batch=None, should_stop=None, on_point=None):
        def logged_epoch(report):
            with open(self.path, "a") as log_file:
                log_file.write(f"{report.epoch} {time.time()}\n")
            on_epoch(report)

        return training.train(config, dataset, on_epoch=logged_epoch, on_batch=on_batch, should_stop=should_stop,
                              on_point=on_point)

    def reported_at(self) -> dict[int, float]:
        with open(self.path) as log_file:
            return {int(epoch): float(at) for epoch, at in (line.split() for line in log_file)}


def _wait(condition, timeout: float = 300.0, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the job did not get there in time")
        time.sleep(interval)


def measure_backend(manager, dataset: data.FashionMnist, prefix: str, logged: LoggedTrain,
                    runs: int = 3) -> dict[str, float]:
    """Start ``runs`` jobs one after the other; time their start, their reports and their Stop."""
    cpu_started = time.process_time()
    starts, latencies, stops = [], [], []
    for _ in range(runs):
        pathlib.Path(logged.path).write_text("")
        submitted = time.monotonic()
        job = manager.submit(JOB, dataset)
        _wait(lambda job=job: job.heartbeat() or job.snapshot().current_epoch >= 1)
        starts.append(time.monotonic() - submitted)
        seen_at: dict[int, float] = {}
        while len(seen_at) < 5:
            job.heartbeat()
            for report in job.snapshot().epochs:
                seen_at.setdefault(report.epoch, time.time())
            time.sleep(0.005)
        reported_at = logged.reported_at()
        latencies += [seen_at[epoch] - reported_at[epoch] for epoch in seen_at if epoch > 1 and epoch in reported_at]
        asked = time.monotonic()
        job.request_stop()
        _wait(lambda job=job: job.heartbeat() or job.done)
        stops.append(time.monotonic() - asked)
    return {f"{prefix}_job_start_cold_seconds": round(starts[0], 3),
            f"{prefix}_job_start_seconds": round(statistics.median(starts[1:]), 3),
            f"{prefix}_report_latency_seconds": round(max(latencies), 3),
            f"{prefix}_report_latency_mean_seconds": round(statistics.mean(latencies), 3),
            f"{prefix}_stop_seconds": round(statistics.median(stops), 3),
            f"{prefix}_cpu_seconds": round(time.process_time() - cpu_started, 2)}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="local", help="auto, host:port, or local (default)")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of a local instance (default 2)")
    options = parser.parse_args(argv)
    dataset = data.load_dataset()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-") as directory:
        logged = LoggedTrain(pathlib.Path(directory) / "reports.txt")
        real_train = jobs.train
        jobs.train = logged
        try:
            started = time.monotonic()
            training.warm_up()
            results["threads_warm_up_seconds"] = round(time.monotonic() - started, 2)
            results.update(measure_backend(jobs.JobManager(), dataset, "threads", logged))
        finally:
            jobs.train = real_train
        started = time.monotonic()
        ray_backend.connect(options.address, num_cpus=options.num_cpus)
        results["ray_init_seconds"] = round(time.monotonic() - started, 2)
        manager = ray_backend.RayJobManager(train_function=logged)
        try:
            started = time.monotonic()
            ray_backend._ray().get(manager.warm_up_workers())
            results["ray_warm_up_seconds"] = round(time.monotonic() - started, 2)
            results.update(measure_backend(manager, dataset, "ray", logged))
        finally:
            manager.close()
            with contextlib.suppress(Exception):
                ray_backend._ray().shutdown()
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
