"""The Train page through app.py: defaults, Start in a worker, live epochs, Stop, history, compare, queue."""

import re
import threading

from apptest_support import (
    progress_texts,
    session_runs,
    shown_texts,
    wait_for_runs_to_end,
    wait_for_text,
    wait_until,
)

from fmnist.jobs import JobStatus
from fmnist.training import TrainingConfig
from views import server

TRAIN = "views/train.py"


def start_training(at, epochs: int, **settings):
    """Set the epochs (and other widgets by key), press Start; return the new run record."""
    at.number_input(key="train_epochs").set_value(epochs)
    for key, value in settings.items():
        at.get_by_key(key).set_value(value)
    runs_before = len(session_runs(at))
    at.button(key="train_start").click().run()
    assert not at.exception
    runs = session_runs(at)
    assert len(runs) == runs_before + 1
    return runs[-1]


def test_train_page_defaults_reproduce_the_reference_run(new_session):
    at = new_session(TRAIN)

    assert not at.exception
    assert [title.value for title in at.title] == ["Train a network"]
    assert at.selectbox(key="train_preset").value == "seed"
    assert at.selectbox(key="train_loss").value == "sparse_categorical_crossentropy"
    assert at.selectbox(key="train_optimizer").value == "rmsprop"
    assert at.number_input(key="train_epochs").value == 5
    assert at.slider(key="train_validation_percent").value == 20
    assert at.select_slider(key="train_batch_size").value == 32
    assert at.number_input(key="train_seed").value == 42
    assert at.number_input(key="train_sample_limit").value == 0  # 0 = all training items
    assert at.number_input(key="train_learning_rate_rmsprop").value == TrainingConfig().effective_learning_rate
    assert not at.button(key="train_start").disabled
    assert session_runs(at) == []


def test_start_trains_in_a_worker_thread_and_reports_the_epoch(new_session):
    at = new_session(TRAIN)

    record = start_training(at, epochs=1)

    assert record.config == TrainingConfig(epochs=1, learning_rate=TrainingConfig().effective_learning_rate)
    assert record.job.thread.name.startswith("fmnist-training-")
    assert record.job.thread is not threading.current_thread()
    assert record.job.thread.is_alive() or record.job.done
    wait_for_text(at, "Epochs done: 1/1")
    wait_for_runs_to_end(at)
    assert not at.exception
    assert record.job.snapshot().status is JobStatus.FINISHED
    assert record.job.result is not None and len(record.job.result.history) == 1
    assert any(text.startswith("Training finished. Epochs done: 1/1") for text in progress_texts(at))


def test_stop_ends_a_long_run_early_and_keeps_the_model(new_session):
    at = new_session(TRAIN)

    record = start_training(at, epochs=50)

    assert not record.job.done, "the script waited for training instead of returning to the visitor"
    assert at.button(key="train_start").disabled  # one run at a time per visitor
    wait_until(at, lambda _: any(re.search(r"Epochs done: [1-9]\d*/50", text) for text in progress_texts(at)),
               "the first epoch of 50")
    assert any("/50" in caption.value for caption in at.sidebar.caption)  # the status follows on every page
    at.button(key="train_stop").click().run()
    assert not at.exception
    wait_for_runs_to_end(at)

    snapshot = record.job.snapshot()
    assert snapshot.status is JobStatus.STOPPED
    assert 1 <= len(snapshot.epochs) < 50
    assert record.job.result is not None and record.job.result.stopped_early
    assert any(text.startswith("Training stopped.") and "the model trained so far is kept" in text
               for text in progress_texts(at))
    assert not at.button(key="train_start").disabled


def test_run_history_lists_runs_and_two_finished_runs_can_be_compared(new_session):
    at = new_session(TRAIN)

    first = start_training(at, epochs=1)
    wait_for_runs_to_end(at)
    assert [row["run"] for _, row in at.dataframe[0].value.iterrows()] == [first.name]
    assert "Compare two runs" not in [subheader.value for subheader in at.subheader]

    second = start_training(at, epochs=1, train_seed=7)
    wait_for_runs_to_end(at)

    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["run"]) == [second.name, first.name]
    assert list(table["status"]) == ["finished", "finished"]
    assert list(table["epochs"]) == ["1/1", "1/1"]
    assert list(table["val accuracy"]) == [f"{run.job.snapshot().epochs[-1].val_accuracy:.4f}" for run in (second, first)]
    assert "Compare two runs" in [subheader.value for subheader in at.subheader]
    assert at.selectbox(key="compare_first").value == first.run_id
    assert at.selectbox(key="compare_second").value == second.run_id
    assert {"compare_loss", "compare_accuracy"} <= {chart.key for chart in at.get("plotly_chart")}


def test_start_waits_in_the_queue_while_the_server_slot_is_taken(new_session, monkeypatch):
    monkeypatch.setenv("FMNIST_MAX_CONCURRENT_TRAINING", "1")
    server.training_backend.clear()
    at = new_session(TRAIN)
    manager = server.job_manager()
    assert manager.max_concurrent == 1
    slot_holder = manager.submit(TrainingConfig(epochs=500), server.shared_dataset().get())
    try:
        wait_until(at, lambda _: slot_holder.snapshot().status is JobStatus.RUNNING, "another run to take the slot")

        record = start_training(at, epochs=1)
        wait_for_text(at, "Queued, position 1")
        assert record.job.snapshot().status is JobStatus.QUEUED
        assert not at.exception
        row = at.dataframe[0].value.iloc[0]  # a run without an epoch yet: a dash, not "None"
        assert (row["run"], row["epochs"], row["val accuracy"], row["val loss"]) == (record.name, "0/1", "—", "—")
        # Nothing to chart yet: a line, not two empty charts redrawn every second (a classroom of
        # queued pages kept the browser busy while the next visitor's page loaded, issue 11).
        assert not {"live_loss_chart", "live_accuracy_chart"} & {chart.key for chart in at.get("plotly_chart")}
        assert "The loss and accuracy charts start with the run's first steps." in [c.value for c in at.caption]

        slot_holder.request_stop()
        wait_for_runs_to_end(at)
        assert record.job.snapshot().status is JobStatus.FINISHED
    finally:
        slot_holder.request_stop()
        slot_holder.wait(60)


def test_settings_that_the_config_refuses_show_an_error_and_disable_start(new_session, monkeypatch):
    # The widgets' own ranges keep every reachable value valid, so the test makes the config stricter.
    checks = TrainingConfig.__post_init__

    def refuse_seed_13(config):
        checks(config)
        if config.seed == 13:
            raise ValueError("The random seed 13 is refused by this test.")

    monkeypatch.setattr(TrainingConfig, "__post_init__", refuse_seed_13)
    at = new_session(TRAIN)
    assert not at.error

    at.number_input(key="train_seed").set_value(13).run()

    assert not at.exception
    assert [error.value for error in at.error] == ["The random seed 13 is refused by this test."]
    assert at.button(key="train_start").disabled
    assert not any(text.startswith("Estimated time per epoch") for text in shown_texts(at))

    at.number_input(key="train_seed").set_value(42).run()
    assert not at.error
    assert not at.button(key="train_start").disabled


# ----------------------------------------------------------------------------- issue 13

def test_train_settings_survive_a_visit_to_another_page_even_mid_run(new_session):
    at = new_session(TRAIN)
    at.selectbox(key="train_preset").set_value("mlp").run()  # a new preset first brings its own defaults
    at.number_input(key="train_seed").set_value(7)
    record = start_training(at, epochs=50)
    at.switch_page("views/explore.py").run()
    at.switch_page(TRAIN).run()
    assert not at.exception
    assert at.selectbox(key="train_preset").value == "mlp"
    assert at.number_input(key="train_epochs").value == 50
    assert at.number_input(key="train_seed").value == 7
    record.job.request_stop()
    wait_for_runs_to_end(at)
    at.switch_page("views/explore.py").run()
    at.switch_page(TRAIN).run()
    assert at.number_input(key="train_epochs").value == 50


def test_numbers_outside_a_fields_range_are_refused_naming_the_field(new_session):
    at = new_session(TRAIN)
    at.number_input(key="train_epochs").set_value(999)
    at.number_input(key="train_learning_rate_rmsprop").set_value(5.0).run()
    assert not at.exception
    errors = [error.value for error in at.error]
    assert any(error.startswith("Epochs: 999 is out of range") for error in errors), errors
    assert any(error.startswith("Learning rate: 5 is out of range") for error in errors), errors
    assert at.button(key="train_start").disabled
    assert session_runs(at) == []


def test_the_sidebar_says_finished_on_another_page_and_runs_are_numbered_per_visitor(new_session, monkeypatch):
    from streamlit.elements.widgets.button import ButtonMixin

    file_names = []
    real_download_button = ButtonMixin.download_button

    def noting_download_button(self, *args, **kwargs):
        file_names.append(kwargs.get("file_name"))
        return real_download_button(self, *args, **kwargs)

    monkeypatch.setattr(ButtonMixin, "download_button", noting_download_button)
    first_visitor = new_session(TRAIN)
    start_training(first_visitor, epochs=1)
    wait_for_runs_to_end(first_visitor)
    first_visitor.switch_page("views/explore.py").run()
    assert any("Training finished" in caption.value for caption in first_visitor.sidebar.caption)

    second_visitor = new_session(TRAIN)
    record = start_training(second_visitor, epochs=1)
    assert record.name == "Run 1"
    wait_for_runs_to_end(second_visitor)
    second_visitor.switch_page("views/try_it.py").run()
    assert not second_visitor.exception
    assert file_names[-2:] == ["fmnist-run-1.keras", "fmnist-run-1-metrics.csv"]


def test_compare_two_runs_moves_to_the_newest_run(new_session):
    at = new_session(TRAIN)
    for seed in (1, 2, 3):
        start_training(at, epochs=1, train_seed=seed)
        wait_for_runs_to_end(at)
    runs = session_runs(at)
    assert at.selectbox(key="compare_second").value == runs[-1].run_id
    assert at.selectbox(key="compare_first").value == runs[-2].run_id


def test_picking_a_preset_brings_its_own_training_defaults_and_the_charts_show_the_within_epoch_curve(new_session):
    from apptest_support import plotly_array, plotly_figure

    from fmnist import models

    at = new_session(TRAIN)
    at.selectbox(key="train_preset").set_value(models.RECOMMENDED_PRESET).run()
    assert not at.exception
    recommended = TrainingConfig(preset=models.RECOMMENDED_PRESET)
    assert at.number_input(key="train_epochs").value == recommended.epochs
    assert at.select_slider(key="train_batch_size").value == recommended.batch_size
    assert at.selectbox(key="train_optimizer").value == recommended.optimizer
    assert at.selectbox(key="train_schedule").value == recommended.schedule

    at.selectbox(key="train_preset").set_value("mlp").run()
    record = start_training(at, 2)
    assert (record.config.preset, record.config.optimizer, record.config.batch_size) == ("mlp", "rmsprop", 32)
    wait_for_runs_to_end(at)
    points = record.job.snapshot().points
    assert points
    traces = {trace["name"]: trace for trace in plotly_figure(at, "live_accuracy_chart")["data"]}
    within = traces["training accuracy, within epochs"]
    assert list(plotly_array(within["x"])) == [point.position for point in points]
    assert list(plotly_array(within["y"])) == [point.accuracy for point in points]


def test_the_code_for_a_run_is_shown_and_downloadable_with_its_settings(new_session):
    at = new_session(TRAIN)
    record = start_training(at, 1, train_seed=7)
    wait_for_runs_to_end(at)

    codes = [element.value for element in at.code if element.value.startswith('"""')]  # not the share link
    assert len(codes) == 1
    assert "keras.utils.set_random_seed(7)" in codes[0] and "epochs=1, batch_size=32" in codes[0]
    assert codes[0].startswith(f'"""fmnist-studio {record.name}: {record.config.describe()}.')
    downloads = {button.key for button in at.get("download_button")}
    assert "download_code" in downloads


def open_link(new_session, query: dict):
    """A visitor who opens a shared link: the query parameters are there before the Train page runs."""
    at = new_session()
    for name, value in query.items():
        at.query_params[name] = value
    at.switch_page(TRAIN).run()
    assert not at.exception
    return at


def test_a_classroom_link_prefills_every_setting_and_says_so(new_session):
    from fmnist import links

    shared = TrainingConfig(preset="cnn", loss="categorical_crossentropy", optimizer="sgd", learning_rate=0.05,
                            epochs=3, batch_size=64, validation_fraction=0.3, sample_limit=2000, seed=9,
                            drawings=True)
    at = open_link(new_session, links.query_from_config(shared))

    assert any("came from a shared link" in info.value for info in at.info)
    assert not at.warning
    record = start_training(at, 3)
    assert record.config.describe() == shared.describe() and record.config.seed == 9


def test_bad_or_hostile_link_values_fall_back_one_by_one_with_a_note(new_session):
    at = open_link(new_session, {"epochs": "999", "preset": "<script>alert(1)</script>", "lr": "abc",
                                 "seed": "x" * 5000, "batch": "64"})

    warnings = [warning.value for warning in at.warning]
    assert len(warnings) == 4
    assert any("epochs" in text and "999" in text and "outside 1–50" in text for text in warnings)
    assert any("preset" in text and "unknown choice" in text for text in warnings)
    assert all(len(text) < 300 for text in warnings)  # a 5,000-character value is cut short
    assert not any("<script>" in text for text in warnings)  # shown escaped, as text
    assert at.selectbox(key="train_preset").value == "seed"
    assert at.number_input(key="train_epochs").value == 5
    assert at.select_slider(key="train_batch_size").value == 64  # the good value is used


def test_picking_a_preset_rewrites_only_the_fields_whose_default_changes(new_session):
    """A field the page writes is sent back to the browser with "set this value"; on a busy server that
    can land after the visitor has typed into the field and put the default back over their number
    (a browser test lost its 2 epochs this way). Seed, MLP and CNN share their training defaults, so
    picking one of them after another must not rewrite any field; the Minute CNN's differ."""
    at = new_session(TRAIN)
    fields = {"train_epochs": "number_input", "train_batch_size": "select_slider", "train_optimizer": "selectbox",
              "train_schedule": "selectbox", "train_loss": "selectbox", "train_learning_rate_rmsprop": "number_input"}

    def rewritten() -> set[str]:
        """The fields this run sent with "set this value" (the latest run's elements)."""
        drawn = {element.key: element for kind in set(fields.values()) for element in getattr(at, kind)}
        return {key for key in fields if key in drawn and drawn[key].proto.set_value}

    at.run()
    assert rewritten() == set()
    for preset in ("cnn", "mlp", "seed"):
        at.selectbox(key="train_preset").set_value(preset).run()
        assert not at.exception
        assert rewritten() == set(), preset
        assert at.number_input(key="train_epochs").value == 5

    at.selectbox(key="train_preset").set_value("minute-cnn").run()
    assert {"train_epochs", "train_batch_size", "train_optimizer", "train_schedule"} <= rewritten()
    assert at.number_input(key="train_epochs").value == TrainingConfig(preset="minute-cnn").epochs
