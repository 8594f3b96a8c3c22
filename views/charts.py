"""Plotly figures several pages share: per-epoch history lines with the reference accuracies."""

from __future__ import annotations

import plotly.graph_objects as go

REFERENCE_LINES = (
    (0.835, "human performance 0.835", "#7b1fa2"),
    (0.842, "logistic regression 0.842", "#00897b"),
    (0.851, "reference run 0.851", "#ef6c00"),
)


def history_figure(curves: list[tuple[str, list[int], list[float], str]], title: str, y_title: str,
                   reference_lines: bool = False) -> go.Figure:
    """A line chart of per-epoch values; ``curves`` are (name, epochs, values, dash)."""
    figure = go.Figure()
    for name, epochs, values, dash in curves:
        figure.add_trace(go.Scatter(x=epochs, y=values, name=name, mode="lines+markers",
                                    line={"dash": dash},
                                    hovertemplate="epoch %{x}<br>%{y:.4f}<extra>" + name + "</extra>"))
    if reference_lines:
        last_epoch = max([max(epochs) for _, epochs, _, _ in curves if epochs] or [1])
        for value, label, colour in REFERENCE_LINES:
            figure.add_trace(go.Scatter(x=[0.5, last_epoch + 0.5], y=[value, value], name=label, mode="lines",
                                        line={"dash": "dot", "color": colour, "width": 1.5}, hoverinfo="name"))
    figure.update_layout(title=title, xaxis_title="epoch", yaxis_title=y_title, height=340,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, hovermode="x unified",
                         legend={"orientation": "h", "y": -0.25})
    figure.update_xaxes(dtick=1, rangemode="tozero")
    return figure
