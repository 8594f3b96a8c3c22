"""Train: pick the settings, start a background run, watch it live, stop it, compare runs."""

from __future__ import annotations

import streamlit as st

from fmnist import models
from fmnist.jobs import JobStatus
from fmnist.training import TrainingConfig, estimate_epoch_seconds
from views import charts, runs, server, status


@st.cache_data(show_spinner=False)
def parameter_count(preset: str) -> int:
    return models.count_parameters(preset)


def read_settings() -> TrainingConfig | None:
    """The controls; returns the user's choices as a config, or None after showing what is wrong."""
    left, middle, right = st.columns(3)
    with left:
        preset = st.selectbox("Model preset", list(models.PRESETS), key="train_preset",
                              format_func=lambda name: models.PRESETS[name].title)
        st.caption(models.PRESETS[preset].description)
        if server.tensorflow_warmup().ready.is_set():
            st.caption(f"{parameter_count(preset):,} trainable parameters")
        loss = st.selectbox("Loss", list(models.LOSSES), format_func=models.LOSSES.get, key="train_loss",
                            help="Cross-entropy is the natural loss for classes; mean squared error shows why.")
        epochs = st.number_input("Epochs", min_value=1, max_value=50, value=5, step=1, key="train_epochs")
    with middle:
        validation_percent = st.slider("Validation split (%)", min_value=5, max_value=50, value=20, step=1,
                                       key="train_validation_percent",
                                       help="Share of the training images held out to validate each epoch.")
        optimizer = st.selectbox("Optimizer", list(models.OPTIMIZERS), key="train_optimizer")
        learning_rate = st.number_input("Learning rate", min_value=0.00001, max_value=1.0,
                                        value=models.OPTIMIZERS[optimizer], step=0.0005, format="%.5f",
                                        key=f"train_learning_rate_{optimizer}")
    with right:
        batch_size = st.select_slider("Batch size", options=[8, 16, 32, 64, 128, 256, 512], value=32,
                                      key="train_batch_size")
        sample_limit = st.number_input("Training-sample limit", min_value=0, max_value=60000, value=0, step=1000,
                                       key="train_sample_limit",
                                       help="Train on only the first N training items: 0 means all of them. "
                                            "5,000 makes a classroom demo take seconds.")
        seed = st.number_input("Random seed", min_value=0, max_value=2**31 - 1, value=42, step=1,
                               key="train_seed")
    try:
        return TrainingConfig(preset=preset, loss=loss, optimizer=optimizer, learning_rate=float(learning_rate),
                              epochs=int(epochs), batch_size=int(batch_size),
                              validation_fraction=validation_percent / 100,
                              sample_limit=int(sample_limit) or None, seed=int(seed))
    except ValueError as error:
        st.error(str(error))
        return None


def render_live_panel() -> None:
    """Polled by a fragment while a run is active: status, progress with ETA, Stop, live charts."""
    record = runs.active_run() or (runs.session_runs()[-1] if runs.session_runs() else None)
    if record is None:
        return
    snapshot = record.job.snapshot()
    if record.job.done and st.session_state.get("live_run_id") == record.run_id:
        st.session_state.pop("live_run_id")
        st.rerun(scope="app")  # the run ended: redraw the whole page once (run list, buttons)
    st.subheader(f"{record.name}: {record.config.preset} preset")
    status_column, stop = st.columns([5, 1])
    if snapshot.status is JobStatus.FAILED:
        status_column.error(status.status_text(snapshot))
    else:
        status_column.progress(status.progress_fraction(snapshot), text=status.status_text(snapshot))
    if not record.job.done and stop.button("Stop", icon=":material/stop_circle:", key="train_stop",
                   disabled=snapshot.stop_requested, width="stretch"):
        record.job.request_stop()
    render_history_charts(snapshot.epochs)


def render_history_charts(reports) -> None:
    epochs = [report.epoch for report in reports]
    loss_chart, accuracy_chart = st.columns(2)
    loss_chart.plotly_chart(charts.history_figure(
        [("training loss", epochs, [r.loss for r in reports], "solid"),
         ("validation loss", epochs, [r.val_loss for r in reports], "dash")],
        "Loss", "loss"), key="live_loss_chart")
    accuracy_chart.plotly_chart(charts.history_figure(
        [("training accuracy", epochs, [r.accuracy for r in reports], "solid"),
         ("validation accuracy", epochs, [r.val_accuracy for r in reports], "dash")],
        "Accuracy", "accuracy", reference_lines=True), key="live_accuracy_chart")


def render_run_history() -> None:
    records = runs.session_runs()
    if not records:
        return
    st.subheader("Your runs")
    rows = []
    for record in reversed(records):
        snapshot = record.job.snapshot()
        last = snapshot.epochs[-1] if snapshot.epochs else None
        rows.append({"run": record.name, "status": snapshot.status.value,
                     "epochs": f"{len(snapshot.epochs)}/{record.config.epochs}",
                     "val accuracy": round(last.val_accuracy, 4) if last else None,
                     "val loss": round(last.val_loss, 4) if last else None,
                     "seconds": round(sum(r.seconds for r in snapshot.epochs), 1),
                     "settings": record.config.describe()})
    st.dataframe(rows, hide_index=True, width="stretch")
    finished = [record for record in records if record.job.snapshot().epochs]
    if len(finished) >= 2:
        st.subheader("Compare two runs")
        left, right = st.columns(2)
        with left:
            first = runs.choose_run("First run", "compare_first", finished, default=finished[-2].run_id)
        with right:
            second = runs.choose_run("Second run", "compare_second", finished, default=finished[-1].run_id)
        curves_loss, curves_accuracy = [], []
        for record, dash in ((first, "solid"), (second, "dash")):
            reports = record.job.snapshot().epochs
            epochs = [r.epoch for r in reports]
            curves_loss.append((f"{record.name} validation loss", epochs, [r.val_loss for r in reports], dash))
            curves_accuracy.append((f"{record.name} validation accuracy", epochs,
                                    [r.val_accuracy for r in reports], dash))
        loss_chart, accuracy_chart = st.columns(2)
        loss_chart.plotly_chart(charts.history_figure(curves_loss, "Validation loss", "loss"), key="compare_loss")
        accuracy_chart.plotly_chart(charts.history_figure(curves_accuracy, "Validation accuracy", "accuracy",
                                                          reference_lines=True), key="compare_accuracy")
        st.caption("Losses are on different scales (mean squared error is far smaller than cross-entropy): "
                   "compare accuracies across losses, losses within one loss.")


def render() -> None:
    st.title("Train a network")
    st.caption("The defaults reproduce the textbook run: the seed preset, sparse categorical cross-entropy, "
               "RMSprop, 5 epochs, batch 32, 20% validation, seed 42 (about 85% validation accuracy).")
    dataset = server.load_dataset_or_stop()
    config = read_settings()
    active = runs.active_run()
    if config is not None:
        estimate = estimate_epoch_seconds(config, len(dataset.x_train))
        st.caption(f"Estimated time per epoch on this server: about {status.format_seconds(estimate)} "
                   f"(for {config.epochs} epochs: about {status.format_seconds(estimate * config.epochs)}, "
                   "plus a second or two to compile the first epoch; longer while others train).")
    start = st.button("Start training", type="primary", icon=":material/play_arrow:", key="train_start",
                      disabled=config is None or active is not None,
                      help="One run at a time per visitor; stop the current run to start another."
                      if active else None)
    if start and config is not None:
        server.wait_for_tensorflow()
        record = runs.start_run(config, dataset)
        st.session_state["live_run_id"] = record.run_id
        st.rerun()  # redraw with the run active: Start disabled, live panel polling
    if active is not None:
        st.session_state["live_run_id"] = active.run_id
    st.fragment(run_every=runs.LIVE_REFRESH_SECONDS if active is not None else None)(render_live_panel)()
    render_run_history()


render()
