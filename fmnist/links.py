"""Classroom links: a run's settings as URL query parameters, and back, refusing bad values one by one.

A teacher shares a link; every student's Train page opens with the same settings. Whatever a
link carries (a typo, an out-of-range number, an unknown preset, a megabyte of text, a script
tag), each value is checked on its own: a good value is used, a bad one falls back to the
default and is reported as a :class:`RejectedValue`, and nothing else is affected. The core
returns data; the page words the notes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from fmnist import models
from fmnist.training import TrainingConfig

EPOCH_RANGE = (1, 50)
LEARNING_RATE_RANGE = (0.00001, 1.0)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512)
VALIDATION_PERCENT_RANGE = (5, 50)
SAMPLE_LIMIT_RANGE = (0, 60000)
SEED_RANGE = (0, 2**31 - 1)
SHOWN_VALUE_LENGTH = 40
"""A rejected value is shown cut to this many characters."""

QUERY_NAMES = {
    "preset": "preset", "loss": "loss", "optimizer": "optimizer", "learning_rate": "lr", "epochs": "epochs",
    "batch_size": "batch", "validation_fraction": "val", "sample_limit": "limit", "seed": "seed",
    "schedule": "schedule", "drawings": "drawings",
}
"""Settings field → query parameter name (short, so links stay readable)."""

KERAS_ONLY_FIELDS = ("loss", "optimizer", "learning_rate", "batch_size", "schedule", "drawings")
"""Settings the scikit-learn baseline does not have: its link leaves them out, and refuses them."""


@dataclasses.dataclass(frozen=True)
class RejectedValue:
    """A query value that was not used: which parameter, what it said (cut short), and why."""

    parameter: str
    value: str
    reason: str


def _shown(value: str) -> str:
    cleaned = "".join(character if character.isprintable() else "?" for character in value)
    return cleaned if len(cleaned) <= SHOWN_VALUE_LENGTH else cleaned[:SHOWN_VALUE_LENGTH] + "…"


def _whole_number(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().lstrip("+-").isdigit() or len(text) > 12:
            raise ValueError("not a whole number")
        number = int(text)
        if not low <= number <= high:
            raise ValueError(f"outside {low:,}–{high:,}")
        return number
    return parse


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        if len(text) > 24:
            raise ValueError("not a number")
        try:
            number = float(text)
        except ValueError:
            raise ValueError("not a number") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise ValueError(f"outside {low:g}–{high:g}")
        return number
    return parse


def _one_of(choices) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError("unknown choice")
        return text
    return parse


def _batch_size(text: str) -> int:
    number = _whole_number(1, 8192)(text)
    if number not in BATCH_SIZES:
        raise ValueError("not one of " + ", ".join(str(size) for size in BATCH_SIZES))
    return number


def _switch(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "on", "yes"):
        return True
    if lowered in ("0", "false", "off", "no"):
        return False
    raise ValueError("not on or off")


PARSERS: dict[str, Callable[[str], Any]] = {
    "preset": _one_of(models.PRESETS),
    "loss": _one_of(models.LOSSES),
    "optimizer": _one_of(models.OPTIMIZERS),
    "learning_rate": _number(*LEARNING_RATE_RANGE),
    "epochs": _whole_number(*EPOCH_RANGE),
    "batch_size": _batch_size,
    "validation_fraction": lambda text: _whole_number(*VALIDATION_PERCENT_RANGE)(text) / 100,
    "sample_limit": lambda text: _whole_number(*SAMPLE_LIMIT_RANGE)(text) or None,
    "seed": _whole_number(*SEED_RANGE),
    "schedule": _one_of(models.SCHEDULES),
    "drawings": _switch,
}


def query_from_config(config: TrainingConfig) -> dict[str, str]:
    """The query parameters that reproduce ``config`` on the Train page."""
    values = {
        "preset": config.preset, "loss": config.loss, "optimizer": config.optimizer,
        "learning_rate": f"{config.effective_learning_rate:g}", "epochs": str(config.epochs),
        "batch_size": str(config.batch_size), "validation_fraction": str(round(config.validation_fraction * 100)),
        "sample_limit": str(config.sample_limit or 0), "seed": str(config.seed),
        "schedule": config.schedule, "drawings": "1" if config.uses_drawings else "0",
    }
    if not models.get_preset(config.preset).is_keras:
        values = {field: value for field, value in values.items() if field not in KERAS_ONLY_FIELDS}
    return {QUERY_NAMES[field]: value for field, value in values.items()}


def settings_from_query(query: Mapping[str, Any]) -> tuple[dict[str, Any], list[RejectedValue]]:
    """The settings a link asks for (only those it names and that are valid), and the values refused.

    ``query`` maps parameter names to a string or a list of strings (``st.query_params`` and
    ``urllib.parse.parse_qs`` both fit); a repeated parameter uses its last value.
    """
    settings: dict[str, Any] = {}
    rejected: list[RejectedValue] = []
    for field, parameter in QUERY_NAMES.items():
        if parameter not in query:
            continue
        raw = query[parameter]
        text = str(raw[-1] if isinstance(raw, (list, tuple)) and raw else raw)
        try:
            settings[field] = PARSERS[field](text)
        except ValueError as error:
            rejected.append(RejectedValue(parameter, _shown(text), str(error)))
    if not models.get_preset(settings.get("preset", TrainingConfig.preset)).is_keras:
        for field in KERAS_ONLY_FIELDS:
            if field in settings:
                del settings[field]
                raw = query[QUERY_NAMES[field]]
                text = str(raw[-1] if isinstance(raw, (list, tuple)) and raw else raw)
                rejected.append(RejectedValue(QUERY_NAMES[field], _shown(text), "does not apply to the baseline"))
    try:
        TrainingConfig(**settings)
    except ValueError as error:  # each value passed, but not together: use none of them
        rejected.append(RejectedValue("(all)", "", str(error)))
        settings = {}
    return settings, rejected
