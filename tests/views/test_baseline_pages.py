"""The textbook baseline through app.py: one click on Train, then every page a run goes to."""

from apptest_support import plotly_figure, session_runs, wait_for_runs_to_end

from fmnist import baseline, models
from fmnist.jobs import JobStatus
from fmnist.training import TrainingConfig

TRAIN = "views/train.py"
BASELINE = models.BASELINE_PRESET
KERAS_ONLY_WIDGETS = ("train_loss", "train_optimizer", "train_schedule", "train_batch_size")


def test_one_click_trains_the_baseline_on_the_settings_split_and_it_overlays_a_seed_run(new_session):
    at = new_session(TRAIN)
    at.number_input(key="train_epochs").set_value(2)
    at.number_input(key="train_seed").set_value(4)
    at.number_input(key="train_sample_limit").set_value(300)
    at.button(key="train_start").click().run()
    wait_for_runs_to_end(at)
    seed_run = session_runs(at)[-1]

    at.button(key="train_baseline").click().run()
    assert not at.exception
    wait_for_runs_to_end(at)

    baseline_run = session_runs(at)[-1]
    assert baseline_run.config == baseline.baseline_config(seed_run.config)
    assert (baseline_run.config.preset, baseline_run.config.epochs, baseline_run.config.seed) == (BASELINE, 2, 4)
    snapshot = baseline_run.job.snapshot()
    assert snapshot.status is JobStatus.FINISHED and len(snapshot.epochs) == 2
    assert [r.val_accuracy for r in snapshot.epochs] == [r.val_accuracy for r in baseline_run.job.result.history]
    # the live panel's charts show its epochs, the comparison lays it over the seed run, with the note
    live = {trace["name"] for trace in plotly_figure(at, "live_accuracy_chart")["data"]}
    assert {"training accuracy", "validation accuracy"} <= live
    compared = [trace["name"] for trace in plotly_figure(at, "compare_accuracy")["data"]]
    assert f"{seed_run.name} validation accuracy" in compared and f"{baseline_run.name} validation accuracy" in compared
    assert any(info.value.startswith("Same model family") for info in at.info)
    rows = [row for row in at.dataframe[0].value.to_dict("records") if row["run"] == baseline_run.name]
    assert rows[0]["settings"] == baseline_run.config.describe()


def test_picked_as_a_preset_its_keras_settings_are_disabled_and_explained(new_session):
    at = new_session(TRAIN)
    at.selectbox(key="train_preset").set_value(BASELINE).run()
    assert not at.exception

    assert all(at.get_by_key(key).disabled for key in KERAS_ONLY_WIDGETS)
    assert at.toggle(key=f"train_drawings_{BASELINE}").disabled
    assert not at.number_input(key="train_epochs").disabled and not at.number_input(key="train_seed").disabled
    assert any("do not apply to it" in caption.value for caption in at.caption)
    assert "train_baseline" not in [button.key for button in at.button]  # Start trains it

    at.number_input(key="train_epochs").set_value(1)
    at.button(key="train_start").click().run()
    wait_for_runs_to_end(at)
    record = session_runs(at)[-1]
    assert record.config == TrainingConfig(preset=BASELINE, epochs=1)
    codes = [element.value for element in at.code if element.value.startswith('"""')]
    assert 'SGDClassifier(loss="log_loss", random_state=42)' in codes[0]
    assert any("scikit-learn alone" in caption.value for caption in at.caption)


def test_evaluate_try_it_look_inside_and_the_game_take_a_baseline_run(new_session):
    at = new_session(TRAIN)
    at.selectbox(key="train_preset").set_value(BASELINE).run()
    at.number_input(key="train_epochs").set_value(3)
    at.button(key="train_start").click().run()
    wait_for_runs_to_end(at)
    record = session_runs(at)[-1]

    at.switch_page("views/evaluate.py").run()
    assert not at.exception
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Validation accuracy"] == f"{record.job.result.history[-1].val_accuracy:.2%}"
    slider = at.select_slider(key=f"evaluate_epoch_{record.run_id}")
    assert list(slider.options) == ["1", "2", "3"]
    slider.set_value(1).run()
    assert not at.exception
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Validation accuracy"] == f"{record.job.result.history[0].val_accuracy:.2%}"

    at.switch_page("views/try_it.py").run()
    assert not at.exception
    downloads = {button.key for button in at.get("download_button")}
    assert "download_weights" in downloads and "download_model" not in downloads and "download_metrics" in downloads

    at.switch_page("views/inside.py").run()
    assert not at.exception
    assert "inside_templates" in [chart.key for chart in at.get("plotly_chart")]
    assert any("exactly SGDClassifier's coef_" in caption.value for caption in at.caption)

    at.switch_page("views/game.py").run()
    assert not at.exception


def test_a_classroom_link_to_the_baseline_refuses_the_settings_it_does_not_have(new_session):
    at = new_session()
    for name, value in {"preset": BASELINE, "epochs": "3", "seed": "6", "optimizer": "adam"}.items():
        at.query_params[name] = value
    at.switch_page(TRAIN).run()
    assert not at.exception

    assert at.selectbox(key="train_preset").value == BASELINE
    assert at.number_input(key="train_epochs").value == 3 and at.number_input(key="train_seed").value == 6
    warnings = [warning.value for warning in at.warning]
    assert len(warnings) == 1 and "optimizer" in warnings[0] and "does not apply to the baseline" in warnings[0]
