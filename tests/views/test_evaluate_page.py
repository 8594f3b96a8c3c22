"""The Evaluate page through app.py: the way to a first model, then metrics, confusion matrix, per class, lucky bag."""

import re

from apptest_support import plotly_array, plotly_figure, quick_train, session_runs

from fmnist import models
from fmnist.data import CLASS_NAMES
from fmnist.training import TrainingConfig

EVALUATE = "views/evaluate.py"


def percent(text: str) -> float:
    match = re.fullmatch(r"(\d+\.\d\d)%", text)
    assert match, text
    return float(match.group(1)) / 100


def test_without_a_model_it_says_so_and_offers_quick_train_and_a_link_to_train(new_session):
    at = new_session(EVALUATE)

    assert not at.exception
    assert [title.value for title in at.title] == ["Evaluate a model"]
    assert any(info.value.startswith("There is no trained model yet to evaluate.") for info in at.info)
    assert not at.metric
    assert not at.button(key="evaluate_quick_train").disabled
    links = at.get("page_link")
    assert [link.value for link in links] == ["Go to Train for all the settings"]
    assert links[0].proto.page.endswith("train")
    assert session_runs(at) == []


def test_after_quick_train_it_shows_metrics_confusion_matrix_class_scores_and_a_lucky_bag(new_session):
    at = new_session(EVALUATE)

    quick_train(at, "evaluate")

    assert not at.exception
    assert not any(info.value.startswith("There is no trained model") for info in at.info)
    record = session_runs(at)[-1]
    assert record.config == TrainingConfig(preset="seed")  # the page tests' quick train (tests/views/conftest.py)
    metrics = {metric.label: metric.value for metric in at.metric}
    assert {"Validation accuracy", "Validation loss", "Test accuracy", "Test loss"} <= set(metrics)
    assert percent(metrics["Validation accuracy"]) > 0.5  # the tiny classes are learnable: chance is 0.1
    assert percent(metrics["Test accuracy"]) > 0.5
    assert at.selectbox(key="evaluate_run").value == record.run_id

    assert [tab.label for tab in at.tabs] == ["Confusion matrix", "Per-class scores", "Drawings", "Lucky bag"]
    matrix_tab, scores_tab, _, bag_tab = at.tabs
    assert "confusion_matrix" in [chart.key for chart in matrix_tab.get("plotly_chart")]
    heatmap = plotly_figure(at, "confusion_matrix")["data"][0]
    confusion = plotly_array(heatmap["z"])
    assert confusion.shape == (10, 10)
    assert confusion.sum() == 100  # every test item once
    assert abs(confusion.trace() / 100 - percent(metrics["Test accuracy"])) < 1e-9
    assert list(heatmap["x"]) == list(CLASS_NAMES)

    assert "class_scores" in [chart.key for chart in scores_tab.get("plotly_chart")]
    bars = plotly_figure(at, "class_scores")["data"]
    assert len(bars) == 2 and all(len(plotly_array(bar["x"])) == 10 for bar in bars)

    assert any(caption.value.startswith("Draw random test items") for caption in bag_tab.caption)
    at.number_input(key="lucky_count").set_value(7)
    at.button(key="lucky_draw").click().run()

    assert not at.exception
    bag_tab = at.tabs[3]
    verdicts = [markdown.value for markdown in bag_tab.markdown if "— truly " in markdown.value]
    assert len(verdicts) == 7
    assert len(at.session_state["lucky_indices"]) == 7
    right = sum(verdict.startswith(":green[**Right**]") for verdict in verdicts)
    assert f"**{right} of 7** right." in [markdown.value for markdown in bag_tab.markdown]
    assert len(bag_tab.image) == 7


def test_per_class_bars_show_recall_and_precision_only(new_session):
    at = new_session(EVALUATE)
    quick_train(at, "evaluate")
    traces = plotly_figure(at, "class_scores")["data"]
    assert [trace["name"].split(" ")[0] for trace in traces] == ["recall", "precision"]


def test_the_quick_train_is_the_recommended_preset_unless_the_server_names_another(monkeypatch):
    from views import runs

    monkeypatch.delenv("FMNIST_QUICK_TRAIN_PRESET", raising=False)
    assert runs.quick_train_config() == TrainingConfig(preset=models.RECOMMENDED_PRESET)
    assert runs.quick_train_config().uses_drawings
    monkeypatch.setenv("FMNIST_QUICK_TRAIN_PRESET", "mlp")
    assert runs.quick_train_config().preset == "mlp"
    monkeypatch.setenv("FMNIST_QUICK_TRAIN_PRESET", "no-such-preset")
    assert runs.quick_train_config().preset == models.RECOMMENDED_PRESET


def test_a_quick_train_too_slow_for_this_server_learns_from_fewer_images(monkeypatch):
    """On a CPU without bfloat16 units the Minute CNN's full run takes minutes: the quick train then
    gets a sample limit that brings its estimate within the budget (and never below the floor)."""
    from views import runs

    monkeypatch.delenv("FMNIST_QUICK_TRAIN_PRESET", raising=False)
    monkeypatch.delenv("FMNIST_QUICK_TRAIN_SECONDS", raising=False)

    def seconds_at(per_image: float):
        return lambda config: 5.0 + per_image * (config.sample_limit or 48_000)

    assert runs.quick_train_config(seconds_at(0.001), 60_000).sample_limit is None  # 53 s: all the images
    slow = runs.quick_train_config(seconds_at(0.01), 60_000)  # 485 s on all the images
    assert slow.preset == models.RECOMMENDED_PRESET and slow.uses_drawings
    assert slow.sample_limit == 8000 and seconds_at(0.01)(slow) <= runs.QUICK_TRAIN_SECONDS
    very_slow = runs.quick_train_config(seconds_at(1.0), 60_000)
    assert very_slow.sample_limit == runs.QUICK_TRAIN_MIN_IMAGES
    chosen = TrainingConfig(preset="cnn", sample_limit=2000)
    assert runs.within_quick_budget(chosen, seconds_at(1.0), 60_000) is chosen  # a limit already chosen stays
    monkeypatch.setenv("FMNIST_QUICK_TRAIN_SECONDS", "1000")  # an operator's longer budget
    assert runs.quick_train_config(seconds_at(0.01), 60_000).sample_limit is None
    monkeypatch.setenv("FMNIST_QUICK_TRAIN_SECONDS", "soon")
    assert runs.quick_train_budget() == runs.QUICK_TRAIN_SECONDS


def test_a_quick_train_whose_set_up_alone_exceeds_the_budget_still_gets_a_config(monkeypatch):
    """A busy server can estimate more than the budget for the set-up alone (compilation, validation):
    shrinking the images then never gets within it, and the limit must stop at the floor, not reach 0
    (it did, and TrainingConfig refused sample_limit=0: Try it and Evaluate showed an error)."""
    from views import runs

    monkeypatch.delenv("FMNIST_QUICK_TRAIN_SECONDS", raising=False)
    busy = runs.quick_train_config(lambda config: 500.0 + 0.001 * (config.sample_limit or 48_000), 60_000)
    assert busy.sample_limit == runs.QUICK_TRAIN_MIN_IMAGES
    tiny = runs.within_quick_budget(TrainingConfig(preset="seed"), lambda config: 100_000.0, 500)  # 400 to train on
    assert tiny.sample_limit is None, "fewer images than the floor: all of them"
