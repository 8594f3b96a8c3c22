"""A run's state in words and in charts (views.status, views.charts), for snapshots made here."""

import pytest

from fmnist.jobs import JobSnapshot, JobStatus
from fmnist.training import EpochReport
from views import charts, status


def report(epoch: int, complete: bool = True) -> EpochReport:
    return EpochReport(epoch=epoch, loss=0.5, accuracy=0.8, val_loss=0.6, val_accuracy=0.79, seconds=1.0,
                       complete=complete)


def snapshot(**changes) -> JobSnapshot:
    values = dict(job_id=1, status=JobStatus.RUNNING, queue_position=0, epochs=(), current_epoch=1,
                  epoch_fraction=0.5, seconds_in_epoch=1.0, total_epochs=5, error="", stop_requested=False,
                  eta=12.0)
    values.update(changes)
    return JobSnapshot(**values)


def test_a_run_stopped_part_way_through_an_epoch_says_so_in_status_table_and_progress():
    stopped = snapshot(status=JobStatus.STOPPED, total_epochs=50, current_epoch=2,
                       epochs=(report(1), report(2, complete=False)), eta=None)
    assert status.status_text(stopped) == ("Training stopped. Epochs done: 1/50 and part of epoch 2; "
                                           "the model trained so far is kept.")
    assert status.epochs_text(stopped) == "1/50 + part of epoch 2"
    assert status.progress_fraction(stopped) == pytest.approx(1 / 50)


def test_a_partial_epoch_gets_a_hollow_marker_and_a_legend_entry():
    figure = charts.history_figure([("training accuracy", [1, 2], [0.8, 0.81], "solid")], "Accuracy", "accuracy",
                                   partial_epochs={2})
    line = figure.data[0]
    assert list(line.marker.symbol) == ["circle", "circle-open"]
    assert [trace.name for trace in figure.data[1:]] == ["epoch 2: stopped part-way"]


def test_a_run_stopped_while_queued_says_there_is_no_model():
    text = status.status_text(snapshot(status=JobStatus.STOPPED, current_epoch=0, eta=None))
    assert "no model" in text
    assert "kept" not in text
    assert status.short_status(snapshot(status=JobStatus.STOPPED, current_epoch=0)) == "stopped before training"


def test_the_last_epoch_while_it_validates_and_after_it_is_not_shown_twice():
    validating = status.status_text(snapshot(current_epoch=5, epoch_fraction=1.0,
                                             epochs=tuple(report(e) for e in range(1, 5))))
    assert validating.startswith("Epoch 5/5: checking the validation images")
    finishing = status.status_text(snapshot(current_epoch=5, epoch_fraction=1.0,
                                            epochs=tuple(report(e) for e in range(1, 6))))
    assert "100% of it" not in finishing and finishing.startswith("Finishing")


def test_a_queued_run_shows_its_expected_wait():
    text = status.status_text(snapshot(status=JobStatus.QUEUED, queue_position=2, expected_wait_seconds=95.0))
    assert "position 2" in text and "Expected wait: about 1 min 35 s." in text


@pytest.mark.parametrize(("seconds", "expected"), [
    (0.05, "under a second"), (0.5, "under a second"), (4.25, "about 4.2 s"), (42.4, "about 42 s"),
    (119.6, "about 2 min 00 s"), (59.7, "about 1 min 00 s"), (605, "about 10 min 05 s"),
])
def test_durations_read_naturally(seconds, expected):
    assert status.about(seconds) == expected


@pytest.mark.parametrize("epochs", [1, 5, 12, 50, 500])
def test_an_epoch_axis_has_at_most_a_dozen_tick_labels(epochs):
    figure = charts.history_figure([("loss", list(range(1, epochs + 1)), [1.0] * epochs, "solid")], "Loss", "loss")
    axis = figure.layout.xaxis
    low, high = axis.range
    ticks = [tick for tick in range(1, epochs + 1) if (tick - axis.tick0) % axis.dtick == 0 and low <= tick <= high]
    assert 1 <= len(ticks) <= 12


def test_while_an_epoch_validates_its_validation_so_far_is_a_hollow_marker_not_part_of_the_training_curve():
    from fmnist.training import TrainingPoint

    points = (TrainingPoint(1, 0.5, 0.9, 0.6), TrainingPoint(1, 1.0, 0.8, 0.7),
              TrainingPoint(1, 1.0, 0.75, 0.72, validation_share=0.25), TrainingPoint(1, 1.0, 0.7, 0.74, 0.5))
    training_points, validating = charts.live_points((), points)
    assert training_points == list(points[:2]) and validating == points[3]
    assert charts.live_points((report(1),), points) == (list(points[:2]), None), "the epoch's report is in"
    figure = charts.history_figure([("validation loss", [], [], "dash")], "Loss", "loss",
                                   live_curve=("within", [0.5, 1.0], [0.9, 0.8]),
                                   validating=("validation loss, so far", 1, 0.7))
    marker = next(trace for trace in figure.data if trace.name == "validation loss, so far")
    assert list(marker.x) == [1] and list(marker.y) == [0.7] and marker.marker.symbol == "circle-open"
