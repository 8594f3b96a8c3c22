"""The core's words in the visitor's language: preset names and descriptions, losses, schedules, a run's settings.

``fmnist/`` returns data and keeps its English texts (the CLI prints them). The pages show them
through here: each text of ``fmnist.models`` is marked below with ``N_`` so that ``pybabel extract``
puts it in the catalogues, and looked up with ``_`` when drawn. A text the catalogue does not know
(a preset added later) shows in English; tests/views/test_language.py fails until it is translated.
"""

from __future__ import annotations

import re

from fmnist import models
from fmnist.evaluation import ConfusedPair
from fmnist.timing import Estimate
from fmnist.training import TrainingConfig
from views.language import N_, _, class_name, format_percent, ngettext

CORE_MESSAGES = (
    N_("Seed (textbook)"),
    N_("Dense(10, softmax) on 784 pixels: the textbook's logistic-regression-like model."),
    N_("MLP"),
    N_("Flatten, Dense(100, relu), Dropout(0.3), Dense(10, softmax): one hidden layer."),
    N_("CNN"),
    N_("Two Conv2D + MaxPool blocks, Dense(100), Dropout(0.4): best accuracy, slowest."),
    N_("Minute CNN"),
    N_("Mirror images, three Conv + MaxPool blocks (bfloat16 where the CPU has it), 7 epochs of one-cycle Adam at "
       "batch 128: above 0.92; under a minute on CPUs with bfloat16 units."),
    N_("Textbook baseline: SGDClassifier (scikit-learn)"),
    N_("Chapter 4's SGDClassifier(loss=\"log_loss\"), one partial_fit per epoch: logistic regression on the 784 "
       "pixels, like the seed network, trained by scikit-learn."),
    N_("does not apply to the baseline"),
    N_("not a number"), N_("not a whole number"), N_("unknown choice"), N_("not on or off"),
    N_("Sparse categorical cross-entropy (integer targets)"),
    N_("Categorical cross-entropy (one-hot targets)"),
    N_("Mean squared error (one-hot targets; shows why cross-entropy is used)"),
    N_("Constant: the same learning rate throughout"),
    N_("One cycle: warm up to the learning rate, then a cosine decay to almost zero"),
)
"""Every text of ``fmnist.models`` that a page shows (presets, ``LOSSES``, ``SCHEDULES``), for extraction."""

SHORT_LOSSES = {"sparse_categorical_crossentropy": N_("sparse categorical crossentropy"),
                "categorical_crossentropy": N_("categorical crossentropy"),
                "mean_squared_error": N_("mean squared error")}
"""Losses as a run's settings line names them (``TrainingConfig.describe``)."""


def preset_title(name: str) -> str:
    return _(models.PRESETS[name].title)


def preset_description(name: str) -> str:
    return _(models.PRESETS[name].description)


def loss_text(name: str) -> str:
    """The loss with its explanation: "Sparse categorical cross-entropy (integer targets)"."""
    return _(models.LOSSES[name])


def short_loss(name: str) -> str:
    """A loss's name without its explanation, so that it fits a select box (the caption has it all)."""
    return loss_text(name).split(" (")[0]


def schedule_text(name: str) -> str:
    return _(models.SCHEDULES[name])


def describe_config(config: TrainingConfig) -> str:
    """``TrainingConfig.describe`` in the visitor's language (the same text in English)."""
    limit = _(", {count} samples").format(count=f"{config.sample_limit:,}") if config.sample_limit else ""
    if not models.get_preset(config.preset).is_keras:
        return _("{preset}, log loss, scikit-learn SGD, {epochs} ep, val {validation}{limit}").format(
            preset=config.preset, epochs=config.epochs, validation=format_percent(config.validation_fraction, 0),
            limit=limit)
    schedule = "" if config.schedule == "constant" else f" {config.schedule}"
    limit += _(", with drawings") if config.uses_drawings else ""
    loss = SHORT_LOSSES.get(config.loss)
    return _("{preset}, {loss}, {optimizer} lr {learning_rate}{schedule}, {epochs} ep, batch {batch_size}, "
             "val {validation}{limit}").format(
        preset=config.preset, loss=_(loss) if loss else config.loss.replace("_", " "), optimizer=config.optimizer,
        learning_rate=f"{config.effective_learning_rate:g}", schedule=schedule, epochs=config.epochs,
        batch_size=config.batch_size, validation=format_percent(config.validation_fraction, 0), limit=limit)


def confused_pair(pair: ConfusedPair) -> str:
    """"Shirt taken for T-shirt/top: 123 times", in the visitor's language."""
    return ngettext("{true} taken for {predicted}: {count} time", "{true} taken for {predicted}: {count} times",
                    pair.count).format(true=class_name(pair.true_label), predicted=class_name(pair.predicted_label),
                                       count=pair.count)


def estimate_basis(estimate: Estimate) -> str:
    """What a time estimate rests on (``Estimate.basis_text``, in the visitor's language)."""
    if not estimate.measured_runs:
        return _(", before any run of this preset on this server")
    return ngettext(", from {count} run of this preset on this server",
                    ", from {count} runs of this preset on this server",
                    estimate.measured_runs).format(count=estimate.measured_runs)


def link_reason(reason: str) -> str:
    """Why a classroom link's value was refused (``fmnist.links``), in the visitor's language: the
    fixed reasons through the catalogue, the two with numbers in them rebuilt around their numbers."""
    outside = re.fullmatch(r"outside (.+)–(.+)", reason)
    if outside:
        return _("outside {low}–{high}").format(low=outside[1], high=outside[2])
    choices = re.fullmatch(r"not one of (.+)", reason)
    if choices:
        return _("not one of {choices}").format(choices=choices[1])
    return _(reason)
