"""The CLI's --drawings flag: a model trained with drawings is saved, loaded back and predicts."""

import json

from PIL import Image, ImageDraw

from tests.fmnist.test_cli import cli_environment, run_cli  # noqa: F401 - a fixture, used by name


def test_a_model_trained_with_drawings_is_saved_and_predicts(cli_environment, tmp_path):  # noqa: F811
    model_path = tmp_path / "drawn.keras"
    trained = run_cli(cli_environment, "train", "--preset", "seed", "--drawings", "--epochs", "1", "--limit", "300",
                      "--json", "--save", str(model_path))
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout.strip().splitlines()[-1])["config"]["drawings"] is True
    picture = Image.new("L", (100, 100), 0)
    ImageDraw.Draw(picture).rectangle((20, 30, 80, 90), outline=255, width=6)
    picture.save(tmp_path / "bag.png")
    predicted = run_cli(cli_environment, "predict", str(tmp_path / "bag.png"), "--model", str(model_path), "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert len(json.loads(predicted.stdout)["top"]) == 3


def test_no_drawings_is_the_default_for_the_seed(cli_environment):  # noqa: F811
    completed = run_cli(cli_environment, "train", "--preset", "seed", "--epochs", "1", "--limit", "100", "--json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1])["config"]["drawings"] is False
