"""Tests for fmnist.models: the presets' architectures, optimizers by name and the FLOP count."""

import keras
import numpy as np
import pytest

from fmnist import models

# Parameters counted by hand from each architecture (weights + biases).
SEED_PARAMETERS = 784 * 10 + 10
MLP_PARAMETERS = (784 * 100 + 100) + (100 * 10 + 10)
CNN_PARAMETERS = ((3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64)  # two convolutions
                  + (7 * 7 * 64 * 100 + 100) + (100 * 10 + 10))  # 28 -> 14 -> 7 after two poolings


@pytest.mark.parametrize(("preset", "input_shape", "layer_types", "parameters"), [
    ("seed", (None, 784), ["Dense"], SEED_PARAMETERS),
    ("mlp", (None, 28, 28), ["Flatten", "Dense", "Dropout", "Dense"], MLP_PARAMETERS),
    ("cnn", (None, 28, 28, 1),
     ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"], CNN_PARAMETERS),
])
def test_presets_have_the_documented_architecture(preset, input_shape, layer_types, parameters):
    model = models.build_model(preset)
    assert model.name == preset
    assert tuple(model.input_shape) == input_shape
    assert tuple(model.output_shape) == (None, 10)
    assert [type(layer).__name__ for layer in model.layers] == layer_types
    assert model.count_params() == parameters
    assert models.count_parameters(preset) == parameters
    assert model.layers[-1].activation is keras.activations.softmax


def test_seed_preset_is_the_textbook_dense_layer():
    assert models.count_parameters("seed") == 7850
    dense = models.build_model("seed").layers[0]
    assert dense.units == 10 and tuple(dense.kernel.shape) == (784, 10)


def test_mlp_and_cnn_hidden_layers_match_their_descriptions():
    mlp = models.build_model("mlp")
    assert mlp.layers[1].units == 100 and mlp.layers[1].activation is keras.activations.relu
    assert mlp.layers[2].rate == pytest.approx(0.3)
    cnn = models.build_model("cnn")
    assert [layer.filters for layer in cnn.layers if isinstance(layer, keras.layers.Conv2D)] == [32, 64]
    assert cnn.layers[6].rate == pytest.approx(0.4)


@pytest.mark.parametrize("preset", sorted(models.PRESETS))
def test_each_preset_outputs_probabilities(preset):
    model = models.build_model(preset)
    batch = np.random.default_rng(0).uniform(0, 1, size=(3, *model.input_shape[1:])).astype(np.float32)
    probabilities = np.asarray(model(batch, training=False))
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()


def test_build_model_gives_a_fresh_model_each_time():
    first, second = models.build_model("seed"), models.build_model("seed")
    assert first is not second
    assert first.layers[0].kernel is not second.layers[0].kernel


def test_presets_are_described_for_people():
    for name, preset in models.PRESETS.items():
        assert preset.name == name
        assert preset.title and preset.description.endswith(".")
        assert preset.seconds_per_sample > 0
    assert models.get_preset("cnn") is models.PRESETS["cnn"]


@pytest.mark.parametrize("call", [models.get_preset, models.build_model, models.count_parameters])
def test_unknown_preset_is_a_value_error_naming_the_choices(call):
    with pytest.raises(ValueError, match=r"Unknown model preset 'resnet'; choose one of seed, mlp, cnn\."):
        call("resnet")


@pytest.mark.parametrize(("name", "optimizer_class"), [
    ("rmsprop", keras.optimizers.RMSprop), ("adam", keras.optimizers.Adam), ("sgd", keras.optimizers.SGD)])
def test_make_optimizer_applies_the_learning_rate(name, optimizer_class):
    optimizer = models.make_optimizer(name, 0.0123)
    assert type(optimizer) is optimizer_class
    assert float(optimizer.learning_rate) == pytest.approx(0.0123)


@pytest.mark.parametrize(("name", "optimizer_class"), [
    ("rmsprop", keras.optimizers.RMSprop), ("adam", keras.optimizers.Adam), ("sgd", keras.optimizers.SGD)])
def test_listed_default_learning_rates_are_keras_defaults(name, optimizer_class):
    assert models.OPTIMIZERS[name] == pytest.approx(float(optimizer_class().learning_rate))


def test_unknown_optimizer_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adagrad'; choose one of rmsprop, adam, sgd\."):
        models.make_optimizer("adagrad", 0.01)


def test_listed_losses_are_keras_losses_and_one_hot_ones_are_flagged():
    for name in models.LOSSES:
        assert callable(keras.losses.get(name))
    assert sorted(models.ONE_HOT_LOSSES) == ["categorical_crossentropy", "mean_squared_error"]
    assert "sparse_categorical_crossentropy" not in models.ONE_HOT_LOSSES


@pytest.mark.parametrize(("preset", "flops"), [
    ("seed", 2 * 784 * 10),
    ("mlp", 2 * (784 * 100 + 100 * 10)),
    ("cnn", 2 * (3 * 3 * 1 * 32 * 28 * 28 + 3 * 3 * 32 * 64 * 14 * 14 + 3136 * 100 + 100 * 10)),
])
def test_flops_per_sample_counts_dense_and_convolution_products(preset, flops):
    assert models.flops_per_sample(models.build_model(preset)) == flops
