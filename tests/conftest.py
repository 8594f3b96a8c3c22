"""Fixtures shared by the whole test tree.

- ``tiny_dataset``: a small, learnable :class:`fmnist.data.FashionMnist` built in memory
  (each class a distinct pattern plus noise), so that one or two epochs reach far above chance.
- ``idx_directory``: that dataset written as the four gzipped IDX files, for loader and CLI tests.
- ``isolated_data_environment`` (autouse): every test that is not marked ``integration`` gets a
  fresh ``FMNIST_CACHE_DIR``, no ``FMNIST_DATA_DIR``, an ``FMNIST_NPM`` that does not exist and
  a Keras download that refuses, so unit tests never read ``~/.cache/fmnist`` nor use the network.
  Tests marked ``integration`` keep the real environment.
"""

import numpy as np
import pytest

from fmnist import data

TINY_TRAIN_COUNT = 600
TINY_TEST_COUNT = 100
DISABLED_NPM = "/nonexistent/npm-is-disabled-in-unit-tests"


def pytest_configure(config):
    """fmnist.training ignores these two warnings on purpose (its engine feeds ``fit`` finite,
    pre-shuffled data); pytest resets warning filters for each test, so repeat them here."""
    config.addinivalue_line("filterwarnings", r"ignore:`shuffle=True` was passed, but will be ignored")
    config.addinivalue_line("filterwarnings", r"ignore:Your input ran out of data; interrupting training")


def make_tiny_dataset(train_count: int = TINY_TRAIN_COUNT, test_count: int = TINY_TEST_COUNT,
                      seed: int = 0) -> data.FashionMnist:
    """Every class a fixed random pattern; each image is its class pattern blended with noise.

    Labels are shuffled (not interleaved) so that a validation split sees every class.
    """
    generator = np.random.default_rng(seed)
    patterns = generator.uniform(0, 255, size=(data.NUM_CLASSES, data.IMAGE_SIZE, data.IMAGE_SIZE))

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = generator.permutation(np.arange(count) % data.NUM_CLASSES).astype(np.uint8)
        noise = generator.uniform(0, 255, size=(count, data.IMAGE_SIZE, data.IMAGE_SIZE))
        images = 0.5 * patterns[labels] + 0.5 * noise
        return images.round().astype(np.uint8), labels

    x_train, y_train = draw(train_count)
    x_test, y_test = draw(test_count)
    return data.FashionMnist(x_train, y_train, x_test, y_test, source="tiny test patterns", official_split=True)


@pytest.fixture(scope="session")
def tiny_dataset() -> data.FashionMnist:
    """600 training and 100 test images, learnable; shared, so never modify its arrays."""
    return make_tiny_dataset()


@pytest.fixture
def idx_directory(tmp_path, tiny_dataset):
    """A folder with the four gzipped IDX files of ``tiny_dataset``."""
    directory = tmp_path / "idx"
    directory.mkdir()
    for key, base_name in data.IDX_FILE_NAMES.items():
        data.write_idx(directory / f"{base_name}.gz", getattr(tiny_dataset, key))
    return directory


def _refuse_keras_download() -> data.FashionMnist:
    raise data.DataError("the Keras download is disabled in unit tests")


@pytest.fixture(autouse=True)
def isolated_data_environment(request, tmp_path_factory, monkeypatch):
    """Point the cache at a fresh folder and disable the network sources, except for integration tests."""
    if request.node.get_closest_marker("integration"):
        return
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path_factory.mktemp("fmnist-cache")))
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setenv("FMNIST_NPM", DISABLED_NPM)
    monkeypatch.setattr(data, "load_from_keras", _refuse_keras_download)
