"""The Look inside page through app.py: templates for the seed preset, units for mlp, filters and maps for cnn."""

import numpy as np
from apptest_support import plotly_array, plotly_figure, session_runs, wait_for_runs_to_end

from fmnist.data import CLASS_NAMES

INSIDE = "views/inside.py"


def heatmaps(at, key):
    return [plotly_array(trace["z"]) for trace in plotly_figure(at, key)["data"]]


def test_without_a_model_it_offers_the_quick_train(new_session):
    at = new_session(INSIDE)
    assert not at.exception
    assert any(info.value.startswith("There is no trained model yet to look inside.") for info in at.info)


def test_the_seed_model_shows_its_ten_class_templates_equal_to_its_weights(new_session):
    at = new_session(INSIDE)
    train_preset(at, "seed")
    assert not at.exception
    model = session_runs(at)[-1].job.result.model
    figure = plotly_figure(at, "inside_templates")
    templates = heatmaps(at, "inside_templates")

    assert len(templates) == 10
    kernel = np.asarray(model.layers[0].kernel)
    for label, template in enumerate(templates):
        np.testing.assert_allclose(template.reshape(28, 28).ravel(), kernel[:, label], rtol=1e-6)
    assert [annotation["text"] for annotation in figure["layout"]["annotations"]] == list(CLASS_NAMES)


def train_preset(at, preset: str):
    """Train one epoch of ``preset`` on the Train page, as a visitor would, and come back here."""
    at.switch_page("views/train.py").run()
    at.selectbox(key="train_preset").set_value(preset)
    at.number_input(key="train_epochs").set_value(1)
    at.button(key="train_start").click().run()
    assert not at.exception
    wait_for_runs_to_end(at)
    at.switch_page(INSIDE).run()


def test_an_mlp_shows_its_strongest_hidden_units_and_a_cnn_its_filters_and_feature_maps(new_session):
    at = new_session(INSIDE)
    for preset in ("mlp", "cnn"):
        train_preset(at, preset)
        assert not at.exception
        assert session_runs(at)[-1].config.preset == preset
        if preset == "mlp":
            units = heatmaps(at, "inside_hidden_units")
            assert len(units) == 16
            strengths = [float(title["text"].split("(")[1].rstrip(")")) for title in
                         plotly_figure(at, "inside_hidden_units")["layout"]["annotations"]]
            assert strengths == sorted(strengths, reverse=True)
        else:
            filters = heatmaps(at, "inside_filters")
            assert len(filters) == 32 and filters[0].shape == (3, 3)
            assert len(heatmaps(at, "inside_maps_" + conv_names(at)[0])) == 16
            at.number_input(key="inside_item").set_value(7).run()
            assert not at.exception
            assert at.session_state["inside_item_value"] == 7


def conv_names(at):
    import keras
    model = session_runs(at)[-1].job.result.model
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
