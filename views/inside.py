"""Look inside: what the model learned, drawn from its weights (templates, filters, feature maps)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from fmnist import baseline, inside
from fmnist.data import CLASS_NAMES
from views import common, runs, server
from views.language import _, class_name

HIDDEN_UNITS_SHOWN = 16
FEATURE_MAPS_SHOWN = 16


def heatmap_grid(images: np.ndarray, titles: list[str], columns: int, diverging: bool, key: str,
                 height_per_row: int = 170) -> None:
    """Small heatmaps side by side; diverging ones are red for positive and blue for negative weights."""
    rows = math.ceil(len(images) / columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.02,
                           vertical_spacing=0.12 / max(rows, 1) + 0.02)
    limit = float(np.abs(images).max()) or 1.0
    for position, image in enumerate(images):
        figure.add_trace(go.Heatmap(
            z=image, colorscale="RdBu_r" if diverging else "Viridis", zmid=0 if diverging else None,
            zmin=-limit if diverging else None, zmax=limit if diverging else None, showscale=position == 0,
            hovertemplate="row %{y}, column %{x}: %{z:.3f}<extra></extra>"),
            row=position // columns + 1, col=position % columns + 1)
    figure.update_yaxes(autorange="reversed", showticklabels=False, scaleanchor=None)
    figure.update_xaxes(showticklabels=False)
    figure.update_layout(height=rows * height_per_row + 60, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    figure.update_annotations(font_size=12)
    st.plotly_chart(figure, key=key)


def render_linear(model) -> None:
    st.subheader(_("One template per class"))
    st.caption(_("Each picture is the weight every pixel gives to a class: red pixels make the class likelier when "
                 "they are light, blue ones make it less likely. A linear model can only compare an image with "
                 "these ten templates, which is why it confuses similar shapes."))
    heatmap_grid(inside.class_templates(model), [class_name(label) for label in range(len(CLASS_NAMES))], columns=5,
                 diverging=True, key="inside_templates")
    if baseline.is_baseline(model):
        st.caption(_("For the textbook baseline these templates are exactly SGDClassifier's coef_: one row of 784 "
                     "weights per class, shown as 28 × 28."))


def render_mlp(model) -> None:
    templates, strengths, units = inside.hidden_unit_templates(model, top=HIDDEN_UNITS_SHOWN)
    st.subheader(_("The {count} strongest hidden units").format(count=len(units)))
    st.caption(_("Each hidden unit looks for its own pattern of pixels (red: light here helps, blue: light here "
                 "hurts) and passes what it finds on to the classes. The strongest units, whose weights in and "
                 "out are largest, come first."))
    heatmap_grid(templates, [_("unit {number} ({strength})").format(number=unit, strength=f"{strength:.2f}")
                             for unit, strength in zip(units, strengths, strict=True)],
                 columns=8, diverging=True, key="inside_hidden_units")


def render_convolutional(model, dataset) -> None:
    filters = inside.first_layer_filters(model)
    st.subheader(_("The first layer's {count} filters").format(count=len(filters)))
    st.caption(_("A convolution slides each small filter over the image: it lights up where the image looks like "
                 "the filter, such as an edge in one direction or a bright spot."))
    heatmap_grid(filters, [_("filter {number}").format(number=number) for number in range(len(filters))], columns=8,
                 diverging=True,
                 key="inside_filters", height_per_row=110)
    st.subheader(_("Feature maps of one item"))
    st.caption(_("What each convolution layer makes of one image: every small picture is one channel, bright where "
                 "that channel found its pattern. Deeper layers see larger, more abstract parts."))
    index = st.number_input(_("Test item number"), min_value=0, max_value=len(dataset.x_test) - 1, step=1,
                            key="inside_item", value=st.session_state.get("inside_item_value", 0))
    st.session_state["inside_item_value"] = int(index)
    left, right = st.columns([1, 4])
    left.image(common.upscale(dataset.x_test[int(index)], 4), width=112,
               caption=class_name(dataset.y_test[int(index)]))
    with right:
        for layer_name, maps in inside.feature_maps(model, dataset.x_test[int(index)] / 255.0):
            shown = maps[:FEATURE_MAPS_SHOWN]
            description = _("{channels} channels of {height} × {width}").format(
                channels=len(maps), height=maps.shape[1], width=maps.shape[2])
            if len(shown) < len(maps):
                description += _(", the first {count} shown").format(count=len(shown))
            st.markdown(f"**{layer_name}**: {description}")
            heatmap_grid(shown, [_("channel {number}").format(number=number) for number in range(len(shown))],
                         columns=8, diverging=False,
                         key=f"inside_maps_{layer_name}", height_per_row=110)


def render() -> None:
    st.title(_("Look inside the model"))
    st.caption(_("What the network learned, read straight from its weights."))
    dataset = server.load_dataset_or_stop()
    record = runs.require_trained_model("look inside")
    if record is None:
        return
    server.wait_for_tensorflow()
    model = record.job.result.model
    try:
        family = inside.model_family(model)
    except ValueError as error:
        st.info(server.in_english_only(str(error), _("This kind of model cannot be drawn here: {reason}").format(
            reason=error)))
        return
    if family == "linear":
        render_linear(model)
    elif family == "mlp":
        render_mlp(model)
    else:
        render_convolutional(model, dataset)


render()
