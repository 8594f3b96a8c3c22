"""Tests for fmnist.models: the presets' architectures, optimizers by name and the FLOP count."""

import time

import keras
import numpy as np
import pytest

from fmnist import data, evaluation, models, training

# Parameters counted by hand from each architecture (weights + biases).
SEED_PARAMETERS = 784 * 10 + 10
MLP_PARAMETERS = (784 * 100 + 100) + (100 * 10 + 10)
CNN_PARAMETERS = ((3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64)  # two convolutions
                  + (7 * 7 * 64 * 100 + 100) + (100 * 10 + 10))  # 28 -> 14 -> 7 after two poolings
MINUTE_CNN_PARAMETERS = ((3 * 3 * 1 * 16 + 16) + (3 * 3 * 16 * 48 + 48) + (3 * 3 * 48 * 128 + 128)
                         + (3 * 3 * 128 * 512 + 512)  # 28 -> 14 -> 7 -> 3 after three poolings
                         + (512 * 10 + 10))


@pytest.mark.parametrize(("preset", "input_shape", "layer_types", "parameters"), [
    ("seed", (None, 784), ["Dense"], SEED_PARAMETERS),
    ("mlp", (None, 28, 28), ["Flatten", "Dense", "Dropout", "Dense"], MLP_PARAMETERS),
    ("cnn", (None, 28, 28, 1),
     ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"], CNN_PARAMETERS),
    ("minute-cnn", (None, 28, 28, 1),
     ["RandomFlip", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense",
      "Dense"],
     MINUTE_CNN_PARAMETERS),
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


@pytest.mark.parametrize("preset", sorted(models.KERAS_PRESETS))
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
    with pytest.raises(ValueError, match=r"Unknown model preset 'resnet'; choose one of seed, mlp, cnn, minute-cnn, sgd-classifier\."):
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
    ("minute-cnn", 2 * (3 * 3 * 1 * 16 * 28 * 28 + 3 * 3 * 16 * 48 * 14 * 14 + 3 * 3 * 48 * 128 * 7 * 7 + 1152 * 512
                         + 512 * 10)),
])
def test_flops_per_sample_counts_dense_and_convolution_products(preset, flops):
    assert models.flops_per_sample(models.build_model(preset)) == flops


# --------------------------------------------------------------------------- the minute CNN

@pytest.mark.parametrize("precision, compute_dtype", [("mixed_bfloat16", "bfloat16"), ("float32", "float32")])
def test_minute_cnn_convolves_in_the_chosen_precision_and_answers_in_float32(precision, compute_dtype):
    model = models.build_minute_cnn(precision=precision)
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convolutions] == list(models.MINUTE_CNN_WIDTHS)
    assert all(layer.compute_dtype == compute_dtype and layer.kernel.dtype == "float32" for layer in convolutions)
    assert model.layers[-1].compute_dtype == "float32"
    probabilities = model(np.zeros((2, 28, 28, 1), dtype=np.float32), training=False)
    assert probabilities.dtype == "float32"


@pytest.mark.parametrize("flags, native", [
    ("fpu sse4_2 avx avx2 fma", False),  # an AVX2 CPU: bfloat16 is emulated, about 8x slower than float32
    ("fpu avx2 avx512f avx512_vnni", False),
    ("fpu avx2 avx512f avx512_bf16", True),
    ("fpu avx2 avx512f amx_bf16 amx_tile", True),
])
def test_bfloat16_counts_as_native_only_with_bfloat16_units(tmp_path, flags, native):
    cpu_info = tmp_path / "cpuinfo"
    cpu_info.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert models.bfloat16_is_native(str(cpu_info)) is native
    assert models.bfloat16_is_native(str(tmp_path / "missing")) is False


def test_the_default_minute_cnn_uses_the_precision_this_cpu_does_fast(monkeypatch):
    monkeypatch.delenv(models.PRECISION_VARIABLE, raising=False)
    expected = "bfloat16" if models.bfloat16_is_native() else "float32"
    model = models.build_model("minute-cnn")
    assert {layer.compute_dtype for layer in model.layers if isinstance(layer, keras.layers.Conv2D)} == {expected}
    monkeypatch.setenv(models.PRECISION_VARIABLE, "float32")
    assert models.minute_cnn_precision() == "float32"
    monkeypatch.setenv(models.PRECISION_VARIABLE, "float16")
    with pytest.raises(ValueError, match="FMNIST_PRECISION"):
        models.minute_cnn_precision()


def test_minute_cnn_mirrors_images_only_while_training():
    model = models.build_minute_cnn(seed=3)
    mirror = model.get_layer("mirror")
    images = np.random.default_rng(0).uniform(0, 1, size=(64, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(mirror(images, training=False)), images)
    mirrored = np.asarray(mirror(images, training=True))
    flipped = [np.array_equal(out, image[:, ::-1]) for out, image in zip(mirrored, images, strict=True)]
    kept = [np.array_equal(out, image) for out, image in zip(mirrored, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54, "about half of the images are mirrored"


def test_textbook_presets_keep_the_textbook_training_defaults():
    for name in ("seed", "mlp", "cnn"):
        preset = models.get_preset(name)
        assert (preset.default_epochs, preset.default_batch_size, preset.default_optimizer,
                preset.default_learning_rate, preset.default_loss, preset.default_schedule) == (
                    5, 32, "rmsprop", None, "sparse_categorical_crossentropy", "constant")


def test_the_textbook_config_is_unchanged():
    config = training.TrainingConfig()
    assert (config.preset, config.loss, config.optimizer, config.learning_rate, config.effective_learning_rate,
            config.epochs, config.batch_size, config.schedule, config.validation_fraction, config.seed) == (
                "seed", "sparse_categorical_crossentropy", "rmsprop", None, 0.001, 5, 32, "constant", 0.2, 42)
    assert config.describe() == "seed, sparse categorical crossentropy, rmsprop lr 0.001, 5 ep, batch 32, val 20%"
    optimizer = models.make_optimizer(config.optimizer, config.effective_learning_rate, config.schedule)
    assert type(optimizer) is keras.optimizers.RMSprop and float(optimizer.learning_rate) == pytest.approx(0.001)


def test_picking_the_minute_cnn_brings_its_defaults():
    preset = models.get_preset("minute-cnn")
    config = training.TrainingConfig(preset="minute-cnn")
    assert (config.epochs, config.batch_size, config.optimizer, config.learning_rate, config.loss,
            config.schedule) == (preset.default_epochs, preset.default_batch_size, preset.default_optimizer,
                                 preset.default_learning_rate, preset.default_loss, preset.default_schedule)
    assert (config.optimizer, config.schedule) == ("adam", "one-cycle")
    assert config.batch_size > 32 and config.learning_rate > models.OPTIMIZERS["adam"]
    assert "one-cycle" in config.describe()


def test_a_users_choices_beat_the_presets_defaults():
    config = training.TrainingConfig(preset="minute-cnn", epochs=2, batch_size=64, schedule="constant",
                                     loss="categorical_crossentropy")
    assert (config.epochs, config.batch_size, config.schedule, config.loss) == (2, 64, "constant",
                                                                                "categorical_crossentropy")
    assert training.TrainingConfig(preset="minute-cnn", learning_rate=0.01).learning_rate == 0.01
    other_optimizer = training.TrainingConfig(preset="minute-cnn", optimizer="rmsprop")
    assert other_optimizer.learning_rate is None and other_optimizer.effective_learning_rate == 0.001
    assert training.TrainingConfig(preset="seed", schedule="one-cycle").schedule == "one-cycle"


def test_an_unknown_schedule_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError, match=r"Unknown learning-rate schedule 'step'; choose one of constant, one-cycle\."):
        training.TrainingConfig(schedule="step")
    with pytest.raises(ValueError, match=r"Unknown learning-rate schedule 'step'"):
        models.make_learning_rate(0.1, "step", 100)
    with pytest.raises(ValueError, match=r"needs the run's number of steps"):
        models.make_learning_rate(0.1, "one-cycle", None)


def test_one_cycle_warms_up_to_the_peak_then_decays_to_almost_nothing():
    schedule = models.make_learning_rate(0.004, "one-cycle", total_steps=1000)
    rates = [float(schedule(step)) for step in range(0, 1001, 50)]
    peak_step = int(np.argmax(rates)) * 50
    assert rates[0] == pytest.approx(0.004 * models.ONE_CYCLE_START_FACTOR)
    assert peak_step == round(1000 * models.ONE_CYCLE_WARMUP_FRACTION)
    assert max(rates) == pytest.approx(0.004)
    assert rates[-1] == pytest.approx(0.004 * models.ONE_CYCLE_END_FACTOR, rel=1e-3)
    warmup, decay = rates[:peak_step // 50 + 1], rates[peak_step // 50:]
    assert warmup == sorted(warmup) and decay == sorted(decay, reverse=True)
    optimizer = models.make_optimizer("adam", 0.004, "one-cycle", total_steps=1000)
    assert isinstance(optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)


def test_a_saved_minute_cnn_loads_with_plain_keras(tmp_path, tiny_dataset):
    result = training.train(training.TrainingConfig(preset="minute-cnn", epochs=1), tiny_dataset)
    path = tmp_path / "minute.keras"
    result.model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(evaluation.predict_probabilities(loaded, tiny_dataset.x_test),
                               evaluation.predict_probabilities(result.model, tiny_dataset.x_test), atol=1e-6)


@pytest.fixture(scope="module")
def real_dataset() -> data.FashionMnist:
    return data.load_dataset()


@pytest.mark.integration
def test_the_minute_cnn_at_its_defaults_beats_092ish_on_the_real_test_set(real_dataset):
    started = time.process_time()
    result = training.train(training.TrainingConfig(preset=models.RECOMMENDED_PRESET), real_dataset)
    probabilities = evaluation.predict_probabilities(result.model, real_dataset.x_test)
    accuracy = float((probabilities.argmax(axis=1) == real_dataset.y_test).mean())
    assert models.RECOMMENDED_PRESET == "minute-cnn"
    assert len(result.history) == models.get_preset("minute-cnn").default_epochs and not result.stopped_early
    assert accuracy >= 0.915, f"test accuracy {accuracy:.4f} after {result.seconds:.0f} s " \
                              f"({time.process_time() - started:.0f} CPU s)"


def test_tensorflow_gets_its_onednn_kernels_on_every_cpu():
    """Importing the core asks TensorFlow for oneDNN before TensorFlow loads; an operator's own value wins."""
    import subprocess
    import sys

    probe = "import os; os.environ.pop('TF_ENABLE_ONEDNN_OPTS', None); import fmnist; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "1"
    kept = "import os; os.environ['TF_ENABLE_ONEDNN_OPTS'] = '0'; import fmnist; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    assert subprocess.run([sys.executable, "-c", kept], capture_output=True, text=True, check=True).stdout.strip() == "0"
