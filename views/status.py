"""A run's state in words for people: queued with the expected wait, training with an ETA, how it ended."""

from __future__ import annotations

from fmnist.jobs import JobSnapshot, JobStatus
from views.language import N_, _, format_number, format_percent

STATUS_WORDS = {"queued": N_("queued"), "running": N_("running"), "finished": N_("finished"),
                "stopped": N_("stopped"), "failed": N_("failed")}
"""``JobStatus`` values, as the runs table shows them."""


def format_seconds(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``2 min 05 s``: rounded once, so never ``2 min 60 s``."""
    if seconds < 10:
        return _("{seconds} s").format(seconds=format_number(max(seconds, 0.1), 1))
    whole = round(seconds)
    if whole < 60:
        return _("{seconds} s").format(seconds=whole)
    minutes, rest = divmod(whole, 60)
    return _("{minutes} min {seconds} s").format(minutes=minutes, seconds=f"{rest:02d}")


def about(seconds: float) -> str:
    """A duration as an estimate: ``about 12 s``, or ``under a second``."""
    return _("under a second") if seconds < 1 else _("about {duration}").format(duration=format_seconds(seconds))


def complete_epochs(snapshot: JobSnapshot) -> int:
    return sum(1 for report in snapshot.epochs if report.complete)


def partial_epoch(snapshot: JobSnapshot) -> int | None:
    """The number of an epoch that was stopped part-way (it has numbers, but not a full epoch's)."""
    return next((report.epoch for report in snapshot.epochs if not report.complete), None)


def epochs_text(snapshot: JobSnapshot) -> str:
    """``3/50``, or ``2/50 + part of epoch 3`` for a run stopped part-way through an epoch."""
    text = f"{complete_epochs(snapshot)}/{snapshot.total_epochs}"
    partial = partial_epoch(snapshot)
    return _("{done} + part of epoch {epoch}").format(done=text, epoch=partial) if partial else text


def short_status(snapshot: JobSnapshot) -> str:
    """One word or two for the runs table."""
    if snapshot.status is JobStatus.STOPPED and not snapshot.epochs:
        return _("stopped before training")
    if snapshot.status is JobStatus.STOPPED and snapshot.abandoned:
        return _("stopped (visitor left)")
    return _(STATUS_WORDS.get(snapshot.status.value, snapshot.status.value))


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
        wait_text = " " + _("Expected wait: {duration}.").format(duration=about(wait)) if wait is not None else ""
        return _("Queued, position {position}: the server trains a limited number of models at once; yours starts "
                 "as soon as a slot is free.").format(position=snapshot.queue_position) + wait_text
    if snapshot.status is JobStatus.RUNNING:
        eta = snapshot.eta_seconds()
        eta_text = _(", {duration} left").format(duration=about(eta)) if eta is not None else ""
        stopping = " " + _("Stopping after the current step group...") if snapshot.stop_requested else ""
        epoch = snapshot.current_epoch
        if epoch == 0:
            phase = _("Preparing the model")
        elif epoch <= len(snapshot.epochs):  # the epoch's numbers are in; the next has not begun
            phase = _("Finishing") if done >= total else _("Epoch {epoch}/{total} done, starting the next").format(
                epoch=epoch, total=total)
        elif snapshot.epoch_fraction >= 1.0:
            phase = _("Epoch {epoch}/{total}: checking the validation images").format(epoch=epoch, total=total)
        else:
            phase = _("Training epoch {epoch}/{total} ({percent} of it)").format(
                epoch=epoch, total=total, percent=format_percent(snapshot.epoch_fraction, 0))
        return _("{phase}{eta}. Epochs done: {done}/{total}.").format(phase=phase, eta=eta_text, done=done,
                                                                      total=total) + stopping
    if snapshot.status is JobStatus.FINISHED:
        return _("Training finished. Epochs done: {done}/{total}.").format(done=done, total=total)
    if snapshot.status is JobStatus.STOPPED:
        if not snapshot.epochs:
            if snapshot.abandoned:
                return _("Stopped before training started (the visitor left): there is no model from this run.")
            return _("Stopped before training started (Stop was pressed): there is no model from this run.")
        partial = partial_epoch(snapshot)
        part = _(" and part of epoch {epoch}").format(epoch=partial) if partial else ""
        if snapshot.abandoned:
            return _("Training stopped because the page was closed. Epochs done: {done}/{total}{part}; the model "
                     "trained so far is kept.").format(done=done, total=total, part=part)
        return _("Training stopped. Epochs done: {done}/{total}{part}; the model trained so far is kept.").format(
            done=done, total=total, part=part)
    return _("Training failed: {error}").format(error=snapshot.error)
