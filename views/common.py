"""Small drawing helpers several pages share: class names, enlarged items, prediction bars, file names.

The other shared concerns have their own modules: ``views.server`` (process-wide dataset, job
manager, TensorFlow warm-up), ``views.runs`` (this visitor's runs), ``views.status`` (a run's
state in words) and ``views.charts`` (history figures).
"""

from __future__ import annotations

import re

import numpy as np
import streamlit as st

from views import language
from views.language import _, format_percent

LOW_CONFIDENCE = 0.5
"""Below this top-1 probability an answer comes with a warning that the model is not sure ..."""
CLOSE_CALL = 0.2
"""... and so does an answer whose runner-up is within this much of it (51% against 49% is a coin flip)."""


def is_unsure(top: list[tuple[int, float]]) -> bool:
    """Whether an answer (the top classes with their probabilities, best first) deserves the warning."""
    best = top[0][1]
    return best < LOW_CONFIDENCE or (len(top) > 1 and best - top[1][1] < CLOSE_CALL)


def safe_file_name(name: str) -> str:
    """An upload's name for display only: letters, digits, dots, dashes and spaces, so no markdown
    or link can be smuggled in through it."""
    kept = re.sub(r"[^\w. -]", "_", name)[:80]
    return kept or _("Your file")


def plain_text(text: str) -> str:
    """``text`` with every Markdown character escaped, so that ``**bold**`` shows as typed, not bold."""
    return re.sub(r"([\\`*_{}\[\]<>()#+\-.!|~$:])", r"\\\1", text)


def upscale(image: np.ndarray, factor: int = 4) -> np.ndarray:
    """Nearest-neighbour enlargement, so 28-pixel items stay crisp on screen."""
    return np.kron(np.asarray(image, dtype=np.uint8), np.ones((factor, factor), dtype=np.uint8))


class_label = language.class_label


def render_top_predictions(top: list[tuple[int, float]], true_label: int | None = None) -> None:
    """Top classes with probability bars; the true class, when known, is marked."""
    for rank, (label, probability) in enumerate(top):
        marker = ""
        if true_label is not None and rank == 0:
            marker = " ✓" if label == true_label else " ✗"
        st.progress(float(probability), text=f"{class_label(label)}: {format_percent(probability)}{marker}")
