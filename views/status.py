"""A run's state in words for people: queued, training with an ETA, or how it ended."""

from __future__ import annotations

from fmnist.jobs import JobSnapshot, JobStatus


def progress_fraction(snapshot: JobSnapshot) -> float:
    done = sum(1 for report in snapshot.epochs if report.complete)
    if snapshot.status is JobStatus.RUNNING and snapshot.current_epoch > done:
        return min(1.0, (done + snapshot.epoch_fraction) / snapshot.total_epochs)
    return min(1.0, done / snapshot.total_epochs)


def status_text(snapshot: JobSnapshot) -> str:
    """One line for people: queued, running with an ETA, or how it ended."""
    done = len(snapshot.epochs)
    if snapshot.status is JobStatus.QUEUED:
        return (f"Queued, position {snapshot.queue_position}: the server trains a limited number of models "
                "at once; yours starts as soon as a slot is free.")
    if snapshot.status is JobStatus.RUNNING:
        eta = snapshot.eta_seconds()
        eta_text = f", about {format_seconds(eta)} left" if eta is not None else ""
        stopping = " Stopping after the current step group..." if snapshot.stop_requested else ""
        return (f"Training epoch {max(snapshot.current_epoch, 1)}/{snapshot.total_epochs} "
                f"({snapshot.epoch_fraction:.0%} of it){eta_text}. Epochs done: {done}/{snapshot.total_epochs}."
                f"{stopping}")
    if snapshot.status is JobStatus.FINISHED:
        return f"Training finished. Epochs done: {done}/{snapshot.total_epochs}."
    if snapshot.status is JobStatus.STOPPED:
        return f"Training stopped. Epochs done: {done}/{snapshot.total_epochs}; the model trained so far is kept."
    return f"Training failed: {snapshot.error}"


def format_seconds(seconds: float) -> str:
    if seconds < 0.1:
        return "under 0.1 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
