"""Fixtures for the page tests: every test gets its own tiny dataset and fresh process-wide caches.

The dataset holder and the job manager are ``st.cache_resource`` objects, shared by every
session of the process. Each test clears them, points ``FMNIST_DATA_DIR`` at its own tiny IDX
files and ``FMNIST_CACHE_DIR`` at its own folder, and at the end stops every run it started.
"""

import pytest
import streamlit as st
from apptest_support import TinyIdxDataset, open_app, stop_all_runs, write_tiny_idx_dataset


@pytest.fixture
def tiny_idx_dataset(tmp_path) -> TinyIdxDataset:
    """500 training and 100 test images as IDX files in a fresh folder."""
    return write_tiny_idx_dataset(tmp_path / "idx")


@pytest.fixture
def app_environment(tiny_idx_dataset, tmp_path, monkeypatch) -> TinyIdxDataset:
    """Environment for one test's app sessions; the caches are cleared before and after."""
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tiny_idx_dataset.directory))
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FMNIST_ABANDON_AFTER_SECONDS", "60")  # a slow poll under load must not stop a run
    monkeypatch.delenv("FMNIST_MAX_CONCURRENT_TRAINING", raising=False)
    # The quick train of the page tests trains the seed preset: seconds on the tiny data, and it learns
    # the tiny classes (the recommended Minute CNN needs more than 400 images).
    monkeypatch.setenv("FMNIST_QUICK_TRAIN_PRESET", "seed")
    st.cache_resource.clear()
    yield tiny_idx_dataset
    st.cache_resource.clear()


@pytest.fixture
def new_session(app_environment):
    """Open app sessions (``new_session("views/train.py")``); their runs are stopped at the end."""
    sessions = []

    def open_session(page: str | None = None):
        at = open_app(page)
        sessions.append(at)
        return at

    yield open_session
    for at in sessions:
        stop_all_runs(at)
