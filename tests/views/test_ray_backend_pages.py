"""The pages with a Ray backend configured (``FMNIST_RAY_ADDRESS``): a cluster that cannot be reached
is refused with a message when someone starts a run, the rest of the app keeps working, and a
run waiting in the cluster's queue says so. No Ray instance is started here (see tests/e2e for that)."""

import socket

from apptest_support import shown_texts

from fmnist.jobs import JobSnapshot, JobStatus
from views import server, status

TRAIN = "views/train.py"


def test_an_unreachable_cluster_is_refused_on_start_with_a_message(new_session, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("FMNIST_RAY_ADDRESS", address)
    server.training_backend.clear()
    at = new_session(TRAIN)
    assert not at.exception
    assert server.training_backend().address == address
    server.training_backend().ready.wait(30)
    at.button(key="train_start").click().run()
    assert not at.exception
    refusals = [text for text in shown_texts(at) if "Training is not available on this server" in text]
    assert len(refusals) == 1, shown_texts(at)
    refusal = refusals[0]
    assert f"Nothing answers at the Ray address '{address}'" in refusal
    assert "unset it to train in this server's threads" in refusal
    assert "runs" not in at.session_state or not at.session_state["runs"]
    at.switch_page("views/explore.py").run()  # the other pages still work
    assert not at.exception


def test_a_run_waiting_in_the_cluster_says_it_waits_for_a_worker_with_its_place():
    waiting = JobSnapshot(job_id=1, status=JobStatus.QUEUED, queue_position=3, epochs=(), current_epoch=0,
                          epoch_fraction=0.0, seconds_in_epoch=0.0, total_epochs=5, error="", stop_requested=False,
                          waiting_for_worker=True)
    assert status.status_text(waiting) == ("Waiting for a worker, place 3 among this server's runs: the Ray "
                                           "cluster starts each run as soon as a CPU is free.")
    assert "Queued" not in status.status_text(waiting)
