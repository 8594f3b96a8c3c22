"""Run by test_ray_cluster_loss.py in its own process (Ray starts once per process): start a local
instance, train, kill the instance's GCS and raylet with SIGKILL, and print what the server saw."""

import json
import os
import signal
import sys
import time

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from fmnist import ray_backend
from fmnist.training import TrainingConfig

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from conftest import make_tiny_dataset


def main() -> None:
    ray_backend.connect("local", num_cpus=2)
    import ray

    dataset = make_tiny_dataset()
    manager = ray_backend.RayJobManager()
    job = manager.submit(TrainingConfig(epochs=500), dataset)
    deadline = time.monotonic() + 120
    while not job.snapshot().epochs and time.monotonic() < deadline:
        job.heartbeat()
        time.sleep(0.05)
    running = job.snapshot().status.value
    node = ray._private.worker._global_node
    for kind in ("gcs_server", "raylet"):  # this process's own instance only
        for info in node.all_processes[kind]:
            os.kill(info.process.pid, signal.SIGKILL)
    killed = time.monotonic()
    while not job.done and time.monotonic() - killed < 60:
        job.heartbeat()
        time.sleep(0.05)
    ended_after = time.monotonic() - killed
    retry = manager.submit(TrainingConfig(epochs=1), dataset)
    print(json.dumps({"running": running, "status": job.snapshot().status.value, "error": job.snapshot().error,
                      "ended_after": ended_after, "retry_status": retry.snapshot().status.value,
                      "retry_error": retry.snapshot().error}), flush=True)
    os._exit(0)  # Ray's shutdown would wait for the dead instance


if __name__ == "__main__":
    main()
