"""The Ray cluster dies under a running job: the job fails with a message, the server process lives
on and refuses new jobs clearly. Runs in a subprocess, since Ray starts once per process."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from fmnist import ray_backend

pytest.importorskip("ray")

pytestmark = pytest.mark.ray

SCENARIO = pathlib.Path(__file__).with_name("ray_cluster_loss_scenario.py")


def test_the_cluster_going_away_fails_the_running_job_and_the_server_lives_on():
    completed = subprocess.run([sys.executable, str(SCENARIO)], capture_output=True, text=True, timeout=240,
                               cwd=ray_backend.REPOSITORY_ROOT,
                               env={**os.environ, "PYTHONPATH": str(ray_backend.REPOSITORY_ROOT)})
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome["running"] == "running"
    assert outcome["status"] == "failed"
    assert outcome["error"] == ray_backend.CLUSTER_LOST_MESSAGE
    assert outcome["ended_after"] < 30
    assert outcome["retry_status"] == "failed"
    assert outcome["retry_error"] == ray_backend.CLUSTER_LOST_MESSAGE
