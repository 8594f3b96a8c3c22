"""Plotly figures several pages share: per-epoch history lines with the reference accuracies."""

from __future__ import annotations

import plotly.graph_objects as go

from views.language import N_, _, format_number

REFERENCE_LINES = (
    (0.835, N_("human performance {value}"), "#7b1fa2"),
    (0.842, N_("logistic regression {value}"), "#00897b"),
    (0.851, N_("reference run {value}"), "#ef6c00"),
)


def epoch_tick_step(last_epoch: int, most_ticks: int = 12) -> int:
    """A tick every 1, 2, 5, 10, 20... epochs: no more than ``most_ticks`` labels on the axis."""
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500):
        if last_epoch / step < most_ticks:
            return step
    return 1000


def live_points(reports, points) -> tuple[list, object | None]:
    """A run's live points split for the charts: the training points (the within-epoch curve), and
    the latest validation point of an epoch still validating (None once its report is in)."""
    reported = {report.epoch for report in reports}
    validating = next((point for point in reversed(points) if point.is_validation and point.epoch not in reported),
                      None)
    return [point for point in points if not point.is_validation], validating


def history_figure(curves: list[tuple[str, list[int], list[float], str]], title: str, y_title: str,
                   reference_lines: bool = False, partial_epochs: set[int] = frozenset(),
                   height: int = 340, live_curve: tuple[str, list[float], list[float]] | None = None,
                   validating: tuple[str, int, float] | None = None) -> go.Figure:
    """A line chart of per-epoch values; ``curves`` are (name, epochs, values, dash).

    ``live_curve`` (name, positions, values) is the running training value within epochs, drawn as a
    thin line under the epoch points: position 2.5 is half-way through epoch 3. ``validating``
    (name, epoch, value) is the value of the validation images done so far while an epoch's
    validation runs: a hollow marker where the epoch's validation point will be.

    Epochs in ``partial_epochs`` were stopped part-way: their points are hollow, and the legend
    says so, because their numbers are not those of a full epoch.
    """
    figure = go.Figure()
    for name, epochs, values, dash in curves:
        symbols = ["circle-open" if epoch in partial_epochs else "circle" for epoch in epochs]
        figure.add_trace(go.Scatter(x=epochs, y=values, name=name, mode="lines+markers",
                                    line={"dash": dash}, marker={"symbol": symbols, "size": 8},
                                    hovertemplate=_("epoch") + " %{x}<br>%{y:.4f}<extra>" + name + "</extra>"))
    if live_curve is not None and live_curve[1]:
        name, positions, values = live_curve
        figure.add_trace(go.Scatter(x=positions, y=values, name=name, mode="lines",
                                    line={"width": 1.5, "color": "#90a4ae"},
                                    hovertemplate=_("epoch") + " %{x:.2f}<br>%{y:.4f}<extra>" + name + "</extra>"))
    if validating is not None:
        name, epoch, value = validating
        figure.add_trace(go.Scatter(x=[epoch], y=[value], name=name, mode="markers",
                                    marker={"symbol": "circle-open", "size": 10, "color": "#90a4ae"},
                                    hovertemplate=_("epoch") + " %{x}<br>%{y:.4f}<extra>" + name + "</extra>"))
    for epoch in sorted(partial_epochs):
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=_("epoch {epoch}: stopped part-way").format(epoch=epoch),
                                    marker={"symbol": "circle-open", "size": 8, "color": "#555"}))
    last_epoch = max([max(epochs) for _, epochs, _, _ in curves if epochs] or [1])
    if live_curve is not None and live_curve[1]:
        last_epoch = max(last_epoch, int(max(live_curve[1]) + 0.999))
    if reference_lines:
        for value, label, colour in REFERENCE_LINES:
            name = _(label).format(value=format_number(value, 3))
            figure.add_trace(go.Scatter(x=[0.5, last_epoch + 0.5], y=[value, value], name=name, mode="lines",
                                        line={"dash": "dot", "color": colour, "width": 1.5}, hoverinfo="name"))
    figure.update_layout(title=title, xaxis_title=_("epoch"), yaxis_title=y_title, height=height,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, hovermode="x unified",
                         legend={"orientation": "h", "y": -0.25})
    step = epoch_tick_step(last_epoch)
    first = 0 if live_curve is not None and live_curve[1] else 0.5
    figure.update_xaxes(tick0=step if step > 1 else 1, dtick=step, range=[first, last_epoch + 0.5])
    return figure
