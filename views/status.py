"""A run's state in words for people: queued with the expected wait, training with an ETA, how it ended."""

from __future__ import annotations

from fmnist.jobs import JobSnapshot, JobStatus
from views.language import _


def plural(count: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def format_seconds(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``2 min 05 s``: rounded once, so never ``2 min 60 s``."""
    if seconds < 10:
        return f"{max(seconds, 0.1):.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest:02d} s"


def about(seconds: float) -> str:
    """A duration as an estimate: ``about 12 s``, or ``under a second``."""
    return "under a second" if seconds < 1 else f"about {format_seconds(seconds)}"


def complete_epochs(snapshot: JobSnapshot) -> int:
    return sum(1 for report in snapshot.epochs if report.complete)


def partial_epoch(snapshot: JobSnapshot) -> int | None:
    """The number of an epoch that was stopped part-way (it has numbers, but not a full epoch's)."""
    return next((report.epoch for report in snapshot.epochs if not report.complete), None)


def epochs_text(snapshot: JobSnapshot) -> str:
    """``3/50``, or ``2/50 + part of epoch 3`` for a run stopped part-way through an epoch."""
    text = f"{complete_epochs(snapshot)}/{snapshot.total_epochs}"
    partial = partial_epoch(snapshot)
    return f"{text} + part of epoch {partial}" if partial else text


def short_status(snapshot: JobSnapshot) -> str:
    """One word or two for the runs table."""
    if snapshot.status is JobStatus.STOPPED and not snapshot.epochs:
        return "stopped before training"
    if snapshot.status is JobStatus.STOPPED and snapshot.abandoned:
        return "stopped (visitor left)"
    return snapshot.status.value


def progress_fraction(snapshot: JobSnapshot) -> float:
    done = complete_epochs(snapshot)
    if snapshot.status is JobStatus.RUNNING and snapshot.current_epoch > len(snapshot.epochs):
        return min(1.0, (done + snapshot.epoch_fraction) / snapshot.total_epochs)
    if snapshot.status is JobStatus.FINISHED:
        return 1.0
    return min(1.0, done / snapshot.total_epochs)


def status_text(snapshot: JobSnapshot) -> str:
    """One line for people: queued, running with an ETA, or how it ended."""
    total = snapshot.total_epochs
    done = complete_epochs(snapshot)
    if snapshot.status is JobStatus.QUEUED and snapshot.waiting_for_worker:
        place = _(", place {place} among this server's runs").format(place=snapshot.queue_position)
        return _("Waiting for a worker{place}: the Ray cluster starts each run as soon as a CPU is free.").format(
            place=place if snapshot.queue_position else "")
    if snapshot.status is JobStatus.QUEUED:
        wait = snapshot.expected_wait_seconds
        wait_text = f" Expected wait: {about(wait)}." if wait is not None else ""
        return (f"Queued, position {snapshot.queue_position}: the server trains a limited number of models "
                f"at once; yours starts as soon as a slot is free.{wait_text}")
    if snapshot.status is JobStatus.RUNNING:
        eta = snapshot.eta_seconds()
        eta_text = f", {about(eta)} left" if eta is not None else ""
        stopping = " Stopping after the current step group..." if snapshot.stop_requested else ""
        if snapshot.current_epoch == 0:
            phase = "Preparing the model"
        elif snapshot.current_epoch <= len(snapshot.epochs):  # the epoch's numbers are in; the next has not begun
            phase = "Finishing" if done >= total else f"Epoch {snapshot.current_epoch}/{total} done, starting the next"
        elif snapshot.epoch_fraction >= 1.0:
            phase = f"Epoch {snapshot.current_epoch}/{total}: checking the validation images"
        else:
            phase = f"Training epoch {snapshot.current_epoch}/{total} ({snapshot.epoch_fraction:.0%} of it)"
        return f"{phase}{eta_text}. Epochs done: {done}/{total}.{stopping}"
    if snapshot.status is JobStatus.FINISHED:
        return f"Training finished. Epochs done: {done}/{total}."
    if snapshot.status is JobStatus.STOPPED:
        if not snapshot.epochs:
            reason = "the visitor left" if snapshot.abandoned else "Stop was pressed"
            return f"Stopped before training started ({reason}): there is no model from this run."
        partial = partial_epoch(snapshot)
        part = f" and part of epoch {partial}" if partial else ""
        why = " because the page was closed" if snapshot.abandoned else ""
        return (f"Training stopped{why}. Epochs done: {done}/{total}{part}; the model trained so far is kept.")
    return f"Training failed: {snapshot.error}"
