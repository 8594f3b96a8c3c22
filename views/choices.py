"""Keep a visitor's choices on every page for the whole session.

Streamlit deletes a widget's state when a script run does not draw that widget, so moving to
another page and back resets every field to its default. The pages keep each value under a key
of their own (``kept_choices``) and put it back before drawing the widget.
"""

from __future__ import annotations

from typing import Any, TypeVar

import streamlit as st

Value = TypeVar("Value")
KEPT = "kept_choices"


def restore(key: str, default: Any) -> None:
    """Before drawing the widget ``key``: give it the visitor's last value, or ``default`` the first time.

    Draw the widget without a ``value``/``index`` argument: its value comes from here.
    """
    kept = st.session_state.setdefault(KEPT, {})
    if key not in st.session_state:
        st.session_state[key] = kept.get(key, default)


def keep(key: str, value: Value) -> Value:
    """After drawing the widget ``key``: remember the value it returned; returns it unchanged."""
    st.session_state.setdefault(KEPT, {})[key] = value
    return value


def kept(key: str, default: Any = None) -> Any:
    """The last value kept under ``key`` (also for values that are not widgets, such as a drawing)."""
    return st.session_state.get(KEPT, {}).get(key, default)
