"""Tests for fmnist.links: settings to a link and back; every bad or hostile value falls back on its own."""

import urllib.parse

import pytest

from fmnist import links, training


def round_trip(config: training.TrainingConfig) -> training.TrainingConfig:
    query = urllib.parse.parse_qs(urllib.parse.urlencode(links.query_from_config(config)))
    settings, rejected = links.settings_from_query(query)
    assert rejected == []
    return training.TrainingConfig(**settings)


@pytest.mark.parametrize("config", [
    training.TrainingConfig(),
    training.TrainingConfig(preset="cnn", loss="categorical_crossentropy", optimizer="sgd", learning_rate=0.05,
                            epochs=12, batch_size=128, validation_fraction=0.3, sample_limit=5000, seed=7),
    training.TrainingConfig(preset="mlp", loss="mean_squared_error", optimizer="adam", learning_rate=0.0003),
    training.TrainingConfig(preset="minute-cnn"),
    training.TrainingConfig(preset="minute-cnn", drawings=False, schedule="constant", epochs=3),
])
def test_a_link_reproduces_every_setting(config):
    restored = round_trip(config)
    assert restored.describe() == config.describe()
    assert (restored.seed, restored.effective_learning_rate) == (config.seed, config.effective_learning_rate)


def test_the_textbook_run_makes_a_short_readable_link():
    assert links.query_from_config(training.TrainingConfig()) == {
        "preset": "seed", "loss": "sparse_categorical_crossentropy", "optimizer": "rmsprop", "lr": "0.001",
        "epochs": "5", "batch": "32", "val": "20", "limit": "0", "seed": "42", "schedule": "constant",
        "drawings": "0"}


@pytest.mark.parametrize(("parameter", "value", "reason"), [
    ("epochs", "999", "outside 1–50"),
    ("epochs", "0", "outside 1–50"),
    ("epochs", "five", "not a whole number"),
    ("epochs", "2.5", "not a whole number"),
    ("lr", "5", "outside 1e-05–1"),
    ("lr", "nan", "outside"),
    ("lr", "inf", "outside"),
    ("lr", "0x10", "not a number"),
    ("batch", "33", "not one of 8, 16, 32"),
    ("val", "95", "outside 5–50"),
    ("limit", "-1", "outside 0–60,000"),
    ("seed", "99999999999999999999", "not a whole number"),
    ("preset", "resnet152", "unknown choice"),
    ("loss", "<script>alert(1)</script>", "unknown choice"),
    ("optimizer", "x" * 100_000, "unknown choice"),
    ("drawings", "maybe", "not on or off"),
    ("schedule", "warp", "unknown choice"),
])
def test_each_bad_value_falls_back_alone_and_is_reported(parameter, value, reason):
    settings, rejected = links.settings_from_query({parameter: value, "epochs" if parameter != "epochs" else "seed": "3"})

    assert len(rejected) == 1
    assert rejected[0].parameter == parameter and reason in rejected[0].reason
    assert len(rejected[0].value) <= links.SHOWN_VALUE_LENGTH + 1
    field = next(name for name, query_name in links.QUERY_NAMES.items() if query_name == parameter)
    assert field not in settings  # the default stays
    assert settings == ({"epochs": 3} if parameter != "epochs" else {"seed": 3})  # the good value is used
    training.TrainingConfig(**settings)


def test_unknown_parameters_are_ignored_and_repeated_ones_use_the_last_value():
    settings, rejected = links.settings_from_query({"epochs": ["2", "4"], "utm_source": "mail", "drop table": "1"})
    assert settings == {"epochs": 4} and rejected == []


def test_control_characters_in_a_rejected_value_are_not_shown():
    _, rejected = links.settings_from_query({"preset": "cnn\x00\n\x1b[31m"})
    assert rejected[0].value == "cnn???[31m"
