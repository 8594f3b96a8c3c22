"""Explore: where the data came from, a gallery of items, class balance, mean images, one item up close."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from fmnist.data import CLASS_NAMES, NUM_CLASSES
from views import choices, common, runs, server

GALLERY_PAGE_SIZE = 30


@st.cache_data(show_spinner=False)
def class_means(_images: np.ndarray, _labels: np.ndarray, source: str) -> np.ndarray:
    """Per-class mean image (10, 28, 28) uint8; computed once per dataset source."""
    return np.stack([_images[_labels == label].mean(axis=0) for label in range(NUM_CLASSES)]).astype(np.uint8)


def render_orientation() -> None:
    """What the app is for and the four steps, with a way to begin; folded away once the visitor has run."""
    with st.container(border=True):
        st.markdown("**Teach a computer to recognise clothes, and watch it learn.** This app trains a small "
                    "neural network on 70,000 pictures of clothing while you watch, then lets you test it "
                    "with your own drawings and photos.")
        steps = st.columns(4)
        steps[0].markdown("**1. Explore** the pictures the model learns from (this page).")
        steps[1].markdown("**2. Train** a network and watch its accuracy climb, epoch by epoch.")
        steps[2].markdown("**3. Evaluate** it: which clothes does it confuse, and how often?")
        steps[3].markdown("**4. Try it** with a drawing or a photo of your own.")
        st.page_link(runs.TRAIN_PAGE, label="Start here: train your first model",
                     icon=":material/play_circle:")


def render() -> None:
    st.title("Explore Fashion-MNIST")
    dataset = server.load_dataset_or_stop()
    if not runs.session_runs():
        render_orientation()
    columns = st.columns(4)
    columns[0].metric("Training images", f"{len(dataset.x_train):,}")
    columns[1].metric("Test images", f"{len(dataset.x_test):,}")
    columns[2].metric("Classes", NUM_CLASSES)
    columns[3].metric("Image size", "28 × 28")

    gallery, statistics, closeup = st.tabs(["Gallery", "Class balance and mean images", "One item up close"])
    with gallery:
        render_gallery(dataset)
    with statistics:
        render_statistics(dataset)
    with closeup:
        render_closeup(dataset)
    render_source(dataset)


def render_source(dataset) -> None:
    """Where the data came from: a detail for the curious, below the pictures."""
    split_text = ("the official train/test split" if dataset.official_split else
                  "a deterministic split of the npm mirror (6,000 train and 1,000 test items per class; "
                  "not the official split, so test numbers differ slightly from published ones)")
    st.caption(f"Source: **{dataset.source}**, {split_text}.")


def render_gallery(dataset) -> None:
    left, middle, right = st.columns([2, 1, 1])
    choices.restore("gallery_class", "All classes")
    chosen = choices.keep("gallery_class", left.selectbox("Class", ["All classes", *CLASS_NAMES], key="gallery_class"))
    choices.restore("gallery_split", "Training")
    split = choices.keep("gallery_split", middle.radio("Split", ["Training", "Test"], horizontal=True,
                                                       key="gallery_split"))
    images, labels = (dataset.x_train, dataset.y_train) if split == "Training" else (dataset.x_test, dataset.y_test)
    indices = np.arange(len(labels)) if chosen == "All classes" else np.flatnonzero(labels == CLASS_NAMES.index(chosen))
    page_count = max(1, -(-len(indices) // GALLERY_PAGE_SIZE))
    # No min/max on the field: the browser would keep an out-of-range page in a red field while the
    # page showed another one. The page is clamped here, and the visitor told.
    choices.restore("gallery_page", 1)
    typed = choices.keep("gallery_page", right.number_input(f"Page (of {page_count:,})", step=1, key="gallery_page"))
    page = min(max(int(typed), 1), page_count)
    if page != typed:
        right.caption(f"There are pages 1 to {page_count:,}: showing page {page:,}.")
    if st.button("Draw 10 at random", icon=":material/casino:", key="gallery_random"):
        st.session_state["gallery_random_pick"] = (chosen, split, np.random.default_rng().choice(
            indices, size=min(10, len(indices)), replace=False).tolist())
    pick = st.session_state.get("gallery_random_pick")
    if pick and pick[0] == chosen and pick[1] == split:
        shown = np.asarray(pick[2])
        where = "all classes" if chosen == "All classes" else f"the {chosen} items"
        st.caption(f"{len(shown)} items drawn at random from {where} of the {split.lower()} split "
                   "(press again for another draw, or go back to browsing in order).")
        if st.button("Back to browsing", key="gallery_back"):
            st.session_state.pop("gallery_random_pick", None)
            st.rerun()
    else:
        start = (int(page) - 1) * GALLERY_PAGE_SIZE
        shown = indices[start:start + GALLERY_PAGE_SIZE]
        st.caption(f"Items {start + 1:,}-{start + len(shown):,} of {len(indices):,}.")
    st.image([common.upscale(images[index], 3) for index in shown],
             caption=[f"#{index} {CLASS_NAMES[labels[index]]}" for index in shown], width=96)


def render_statistics(dataset) -> None:
    train_counts = np.bincount(dataset.y_train, minlength=NUM_CLASSES)
    test_counts = np.bincount(dataset.y_test, minlength=NUM_CLASSES)
    figure = go.Figure([go.Bar(name="training", x=list(CLASS_NAMES), y=train_counts),
                        go.Bar(name="test", x=list(CLASS_NAMES), y=test_counts)])
    figure.update_layout(title="Items per class", barmode="group", height=360,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, yaxis_title="items")
    st.plotly_chart(figure, key="class_distribution")
    st.subheader("Mean image per class")
    st.caption("The average of every training item of a class: the shape the model can lean on.")
    means = class_means(dataset.x_train, dataset.y_train, dataset.source)
    st.image([common.upscale(mean, 3) for mean in means], caption=list(CLASS_NAMES), width=96)


def render_closeup(dataset) -> None:
    left, right = st.columns([1, 2])
    choices.restore("closeup_index", 0)
    index = choices.keep("closeup_index", left.number_input(
        "Training item number", min_value=0, max_value=len(dataset.x_train) - 1, step=1, key="closeup_index"))
    label = int(dataset.y_train[int(index)])
    left.markdown(f"**{common.class_label(label)}**, label {label}")
    left.caption("Hover over a pixel to see its value (0 = black, 255 = white).")
    figure = px.imshow(dataset.x_train[int(index)], color_continuous_scale="gray", zmin=0, zmax=255,
                       labels={"x": "column", "y": "row", "color": "value"})
    figure.update_layout(height=480, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    right.plotly_chart(figure, key="closeup_heatmap")


render()
