"""Tests for fmnist.codegen: every preset and loss gives a script that compiles, and the script reproduces a run."""

import ast
import json
import os
import re
import subprocess
import sys

import pytest

from fmnist import codegen, data, models, training


@pytest.mark.parametrize("preset", list(models.KERAS_PRESETS))
@pytest.mark.parametrize("loss", list(models.LOSSES))
def test_every_preset_and_loss_gives_a_script_that_compiles_and_spells_out_the_settings(preset, loss):
    config = training.TrainingConfig(preset=preset, loss=loss, optimizer="adam", learning_rate=0.003, epochs=3,
                                     batch_size=64, validation_fraction=0.25, sample_limit=1234, seed=9,
                                     stratify=True, schedule="constant")
    script = codegen.training_script(config, title="Run 3")

    compile(script, "run3.py", "exec")
    tree = ast.parse(script)
    assert ast.get_docstring(tree).startswith("Run 3: " + config.describe())
    assert "learning_rate = 0.003\n" in script and "keras.optimizers.Adam(learning_rate=learning_rate)" in script
    assert f'loss="{loss}"' in script
    assert "epochs=3, batch_size=64" in script
    assert "test_size=0.25, random_state=9, stratify=train_target" in script
    assert "train_scaled[:1234], train_target[:1234]" in script
    assert "keras.utils.set_random_seed(9)" in script
    assert ("to_categorical" in script) == (loss in models.ONE_HOT_LOSSES)
    assert "import fmnist" not in script and "from fmnist" not in script  # standalone


@pytest.mark.parametrize("preset", list(models.KERAS_PRESETS))
def test_the_scripts_model_is_the_presets_model(preset):
    """The model part of the script runs on its own and builds the preset's architecture."""
    import keras

    script = codegen.training_script(training.TrainingConfig(preset=preset))
    model_part = script[script.index("IMAGE_SIZE = "):script.index("model.summary()")]
    model_part = model_part.replace(script[script.index("def load_fashion_mnist"):script.index("keras.utils.set_random")],
                                    "")
    namespace = {"keras": keras}
    exec(compile(model_part, "model_part.py", "exec"), namespace)
    assert namespace["model"].count_params() == models.count_parameters(preset)
    assert [type(layer) for layer in namespace["model"].layers] == [type(layer) for layer in
                                                                    models.build_model(preset).layers]


def test_a_one_cycle_run_spells_out_its_schedule_and_a_drawing_run_says_what_is_left_out():
    script = codegen.training_script(training.TrainingConfig(preset="minute-cnn", epochs=6))
    assert "keras.optimizers.schedules.CosineDecay(" in script and "total_steps = math.ceil(len(train_scaled) / 128) * 6" in script
    assert "DrawingAugmentation" in script and "training_drawings" in script
    plain = codegen.training_script(training.TrainingConfig(preset="minute-cnn", drawings=False))
    assert "DrawingAugmentation" not in plain and "training_drawings" not in plain


@pytest.mark.integration
def test_the_script_of_a_seed_run_reproduces_its_validation_accuracy(tmp_path):
    config = training.TrainingConfig(epochs=1, sample_limit=2000)
    dataset = data.load_dataset()
    app_run = training.train(config, dataset)
    path = tmp_path / "run.py"
    path.write_text(codegen.training_script(config))

    completed = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=False)

    assert completed.returncode == 0, completed.stderr[-2000:]
    match = re.search(r"validation accuracy: (\d\.\d+)", completed.stdout)
    assert match, completed.stdout[-2000:]
    assert abs(float(match.group(1)) - app_run.history[-1].val_accuracy) <= 1e-3, json.dumps(
        {"script": match.group(1), "app": app_run.history[-1].val_accuracy})
