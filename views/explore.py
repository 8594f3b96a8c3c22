"""Explore: where the data came from, a gallery of items, class balance, mean images, one item up close."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from fmnist.data import CLASS_NAMES, NUM_CLASSES
from views import choices, common, runs, server
from views.language import N_, _, class_name, format_number, ngettext

GALLERY_PAGE_SIZE = 30
ALL_CLASSES = N_("All classes")
SPLITS = (N_("Training"), N_("Test"))


@st.cache_data(show_spinner=False)
def class_means(_images: np.ndarray, _labels: np.ndarray, source: str) -> np.ndarray:
    """Per-class mean image (10, 28, 28) uint8; computed once per dataset source."""
    return np.stack([_images[_labels == label].mean(axis=0) for label in range(NUM_CLASSES)]).astype(np.uint8)


def render_orientation() -> None:
    """What the app is for and the four steps, with a way to begin; folded away once the visitor has run."""
    with st.container(border=True):
        st.markdown(_("**Teach a computer to recognise clothes, and watch it learn.** This app trains a small "
                      "neural network on 70,000 pictures of clothing while you watch, then lets you test it "
                      "with your own drawings and photos."))
        steps = st.columns(4)
        steps[0].markdown(_("**1. Explore** the pictures the model learns from (this page)."))
        steps[1].markdown(_("**2. Train** a network and watch its accuracy climb, epoch by epoch."))
        steps[2].markdown(_("**3. Evaluate** it: which clothes does it confuse, and how often?"))
        steps[3].markdown(_("**4. Try it** with a drawing or a photo of your own."))
        st.page_link(runs.TRAIN_PAGE, label=_("Start here: train your first model"),
                     icon=":material/play_circle:")


def render() -> None:
    st.title(_("Explore Fashion-MNIST"))
    dataset = server.load_dataset_or_stop()
    if not runs.session_runs():
        render_orientation()
    columns = st.columns(4)
    columns[0].metric(_("Training images"), format_number(len(dataset.x_train)))
    columns[1].metric(_("Test images"), format_number(len(dataset.x_test)))
    columns[2].metric(_("Classes"), NUM_CLASSES)
    columns[3].metric(_("Image size"), "28 × 28")

    gallery, statistics, closeup = st.tabs([_("Gallery"), _("Class balance and mean images"),
                                            _("One item up close")])
    with gallery:
        render_gallery(dataset)
    with statistics:
        render_statistics(dataset)
    with closeup:
        render_closeup(dataset)
    render_source(dataset)


def render_source(dataset) -> None:
    """Where the data came from: a detail for the curious, below the pictures."""
    if dataset.official_split:
        text = _("Source: **{source}**, the official train/test split.")
    else:
        text = _("Source: **{source}**, a deterministic split of the npm mirror (6,000 train and 1,000 test items "
                 "per class; not the official split, so test numbers differ slightly from published ones).")
    st.caption(text.format(source=dataset.source))


def render_gallery(dataset) -> None:
    left, middle, right = st.columns([2, 1, 1])
    option_names = {option: _(option) for option in (ALL_CLASSES, *CLASS_NAMES, *SPLITS)}  # in the visitor's language, now
    choices.restore("gallery_class", ALL_CLASSES)
    chosen = choices.keep("gallery_class", left.selectbox(_("Class"), [ALL_CLASSES, *CLASS_NAMES],
                                                          format_func=option_names.__getitem__, key="gallery_class"))
    choices.restore("gallery_split", SPLITS[0])
    split = choices.keep("gallery_split", middle.radio(_("Split"), SPLITS, format_func=option_names.__getitem__,
                                                       horizontal=True, key="gallery_split"))
    images, labels = (dataset.x_train, dataset.y_train) if split == SPLITS[0] else (dataset.x_test, dataset.y_test)
    indices = np.arange(len(labels)) if chosen == ALL_CLASSES else np.flatnonzero(labels == CLASS_NAMES.index(chosen))
    page_count = max(1, -(-len(indices) // GALLERY_PAGE_SIZE))
    # No min/max on the field: the browser would keep an out-of-range page in a red field while the
    # page showed another one. The page is clamped here, and the visitor told.
    choices.restore("gallery_page", 1)
    typed = choices.keep("gallery_page", right.number_input(
        _("Page (of {count})").format(count=format_number(page_count)), step=1, key="gallery_page"))
    page = min(max(int(typed), 1), page_count)
    if page != typed:
        right.caption(_("There are pages 1 to {count}: showing page {page}.").format(
            count=format_number(page_count), page=format_number(page)))
    if st.button(_("Draw 10 at random"), icon=":material/casino:", key="gallery_random"):
        st.session_state["gallery_random_pick"] = (chosen, split, np.random.default_rng().choice(
            indices, size=min(10, len(indices)), replace=False).tolist())
    pick = st.session_state.get("gallery_random_pick")
    if pick and pick[0] == chosen and pick[1] == split:
        shown = np.asarray(pick[2])
        if chosen == ALL_CLASSES:
            drawn = ngettext("{count} item drawn at random from all classes of the {split} split",
                             "{count} items drawn at random from all classes of the {split} split", len(shown))
        else:
            drawn = ngettext("{count} item drawn at random from the {name} items of the {split} split",
                             "{count} items drawn at random from the {name} items of the {split} split", len(shown))
        st.caption(drawn.format(count=len(shown), name=class_name(CLASS_NAMES.index(chosen)) if chosen in CLASS_NAMES
                                else "", split=_(split).lower())
                   + " " + _("(press again for another draw, or go back to browsing in order)."))
        if st.button(_("Back to browsing"), key="gallery_back"):
            st.session_state.pop("gallery_random_pick", None)
            st.rerun()
    else:
        start = (int(page) - 1) * GALLERY_PAGE_SIZE
        shown = indices[start:start + GALLERY_PAGE_SIZE]
        st.caption(_("Items {first}-{last} of {count}.").format(
            first=format_number(start + 1), last=format_number(start + len(shown)), count=format_number(len(indices))))
    st.image([common.upscale(images[index], 3) for index in shown],
             caption=[f"#{index} {class_name(labels[index])}" for index in shown], width=96)


def render_statistics(dataset) -> None:
    train_counts = np.bincount(dataset.y_train, minlength=NUM_CLASSES)
    test_counts = np.bincount(dataset.y_test, minlength=NUM_CLASSES)
    names = [class_name(label) for label in range(NUM_CLASSES)]
    figure = go.Figure([go.Bar(name=_("training"), x=names, y=train_counts),
                        go.Bar(name=_("test"), x=names, y=test_counts)])
    figure.update_layout(title=_("Items per class"), barmode="group", height=360,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, yaxis_title=_("items"))
    st.plotly_chart(figure, key="class_distribution")
    st.subheader(_("Mean image per class"))
    st.caption(_("The average of every training item of a class: the shape the model can lean on."))
    means = class_means(dataset.x_train, dataset.y_train, dataset.source)
    st.image([common.upscale(mean, 3) for mean in means], caption=names, width=96)


def render_closeup(dataset) -> None:
    left, right = st.columns([1, 2])
    choices.restore("closeup_index", 0)
    index = choices.keep("closeup_index", left.number_input(
        _("Training item number"), min_value=0, max_value=len(dataset.x_train) - 1, step=1, key="closeup_index"))
    label = int(dataset.y_train[int(index)])
    left.markdown(_("**{name}**, label {label}").format(name=common.class_label(label), label=label))
    left.caption(_("Hover over a pixel to see its value (0 = black, 255 = white)."))
    figure = px.imshow(dataset.x_train[int(index)], color_continuous_scale="gray", zmin=0, zmax=255,
                       labels={"x": _("column"), "y": _("row"), "color": _("value")})
    figure.update_layout(height=480, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    right.plotly_chart(figure, key="closeup_heatmap")


render()
