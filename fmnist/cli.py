"""Command line: ``python -m fmnist data | train | predict``.

Bad input (an unreadable image, an invalid option, no data source) ends with a one-line
message and a non-zero exit code, never a traceback. ``data`` exits with 1 when the data
folder asked for (``FMNIST_DATA_DIR``) could not be used and the cached data was shown
instead, with a note saying why.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence

from fmnist import models, ray_backend
from fmnist.data import CLASS_NAMES, DataError, cache_paths, directory_source_name, load_dataset, requested_directory
from fmnist.preprocess import prepare_image
from fmnist.training import EpochReport, TrainingConfig, TrainingResult


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)


def command_data(arguments: argparse.Namespace) -> int:
    dataset = load_dataset(progress=_progress)
    cache_file, _ = cache_paths()
    print(f"source: {dataset.source}")
    print(f"split: {'official' if dataset.official_split else 'deterministic mirror split (not the official one)'}")
    print(f"train: {dataset.x_train.shape} {dataset.x_train.dtype}, test: {dataset.x_test.shape}")
    print(f"cache: {cache_file}")
    for note in dataset.notes:
        print(f"note: {note}")
    from fmnist import drawings

    started = time.perf_counter()
    drawn = drawings.training_drawings(dataset)
    print(f"canvas drawings of training images: {len(drawn.images):,} ({time.perf_counter() - started:.1f} s)")
    directory = requested_directory()
    return 1 if directory is not None and dataset.source != directory_source_name(directory) else 0


def _epoch_line(report: EpochReport, total: int) -> str:
    return (f"Epoch {report.epoch}/{total} - {report.seconds:.1f}s - accuracy: {report.accuracy:.4f} - "
            f"loss: {report.loss:.4f} - val_accuracy: {report.val_accuracy:.4f} - val_loss: {report.val_loss:.4f}")


def command_train(arguments: argparse.Namespace) -> int:
    config = TrainingConfig(
        preset=arguments.preset, loss=arguments.loss, optimizer=arguments.optimizer,
        learning_rate=arguments.lr, epochs=arguments.epochs, batch_size=arguments.batch_size,
        validation_fraction=arguments.val_split, stratify=arguments.stratify,
        sample_limit=arguments.limit, seed=arguments.seed, fast=not arguments.plain, schedule=arguments.schedule,
        drawings=arguments.drawings)
    started = time.perf_counter()
    dataset = load_dataset(progress=_progress)
    from fmnist import evaluation, training  # TensorFlow loads here, after the arguments are checked

    output = sys.stderr if arguments.json else sys.stdout
    print_epoch = lambda report: print(_epoch_line(report, config.epochs), file=output, flush=True)  # noqa: E731
    if arguments.ray:
        result = train_on_ray(config, dataset, arguments.ray, print_epoch)
    else:
        result = training.train(config, dataset, on_epoch=print_epoch)
    validation = evaluation.evaluate_model(result.model, dataset.x_train[result.split.validation_indices],
                                           dataset.y_train[result.split.validation_indices], config.loss)
    test = evaluation.evaluate_model(result.model, dataset.x_test, dataset.y_test, config.loss)
    print(f"validation: accuracy {validation.accuracy:.4f}, loss {validation.loss:.4f}", file=output)
    print(f"test: accuracy {test.accuracy:.4f}, loss {test.loss:.4f}", file=output)
    if arguments.save:
        result.model.save(arguments.save)
        print(f"saved: {arguments.save}", file=output)
    if arguments.json:
        print(json.dumps({
            "history": [{"loss": r.loss, "accuracy": r.accuracy, "val_loss": r.val_loss,
                         "val_accuracy": r.val_accuracy, "seconds": r.seconds} for r in result.history],
            "val_accuracy": validation.accuracy, "val_loss": validation.loss,
            "test_accuracy": test.accuracy, "test_loss": test.loss,
            "seconds": time.perf_counter() - started, "training_seconds": result.seconds,
            "data_source": dataset.source, "official_split": dataset.official_split,
            "config": {"preset": config.preset, "loss": config.loss, "optimizer": config.optimizer,
                       "learning_rate": config.effective_learning_rate, "epochs": config.epochs,
                       "batch_size": config.batch_size, "schedule": config.schedule,
                       "validation_fraction": config.validation_fraction,
                       "sample_limit": config.sample_limit, "seed": config.seed, "fast": config.fast,
                       "drawings": config.uses_drawings},
        }))
    return 0


class JobFailedError(RuntimeError):
    """A training job on the Ray cluster ended without a model (the message says why)."""


def train_on_ray(config: TrainingConfig, dataset, address: str, on_epoch) -> TrainingResult:
    """Train as one job on the Ray cluster at ``address`` (auto, host:port or local), through the
    same job manager the web pages use; epochs are reported as they arrive."""
    from fmnist import jobs

    manager = ray_backend.make_job_manager(address)
    job = manager.submit(config, dataset)
    shown = 0
    try:
        while not job.wait(0.2):
            job.heartbeat()
            shown = _report_new_epochs(job.snapshot(), shown, on_epoch)
    except KeyboardInterrupt:
        job.request_stop()
        job.wait(30)
        raise
    finally:
        manager.close()
    snapshot = job.snapshot()
    _report_new_epochs(snapshot, shown, on_epoch)
    if snapshot.status is jobs.JobStatus.FAILED or job.result is None:
        raise JobFailedError(snapshot.error or "The Ray job ended without a model.")
    return job.result


def _report_new_epochs(snapshot, shown: int, on_epoch) -> int:
    for report in snapshot.epochs[shown:]:
        on_epoch(report)
    return max(shown, len(snapshot.epochs))


def command_predict(arguments: argparse.Namespace) -> int:
    if not os.path.isfile(arguments.model):
        raise DataError(f"No model file at {arguments.model}; train one with `python -m fmnist train --save ...`.")
    prepared = prepare_image(arguments.image)
    import keras

    from fmnist import augment, evaluation  # augment registers the drawing layer for loading  # noqa: F401

    try:
        model = keras.models.load_model(arguments.model)
    except Exception as error:
        raise DataError(f"{arguments.model} is not a Keras model file we can load ({error}).") from error
    probabilities = evaluation.predict_probabilities(model, prepared.array[None])[0]
    top = [{"label": label, "name": CLASS_NAMES[label], "probability": probability}
           for label, probability in evaluation.top_k(probabilities, 3)]
    if arguments.json:
        print(json.dumps({"top": top}))
    else:
        for entry in top:
            print(f"{entry['probability']:7.2%}  {entry['name']} ({entry['label']})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fmnist", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="log each data source attempt")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="fetch and verify Fashion-MNIST; show source, split and cache")
    data.set_defaults(handler=command_data)

    train = commands.add_parser("train", help="train a preset and report validation and test accuracy")
    train.add_argument("--preset", default="seed", choices=sorted(models.PRESETS))
    train.add_argument("--epochs", type=int, default=None, help="default: the preset's (5 for seed, mlp, cnn)")
    train.add_argument("--loss", default=None, choices=list(models.LOSSES),
                       help="default: the preset's (sparse categorical cross-entropy for all)")
    train.add_argument("--optimizer", default=None, choices=list(models.OPTIMIZERS),
                       help="default: the preset's (rmsprop for seed, mlp, cnn)")
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: the preset's with its optimizer, else the optimizer's)")
    train.add_argument("--batch-size", type=int, default=None, help="default: the preset's (32 for seed, mlp, cnn)")
    train.add_argument("--schedule", default=None, choices=list(models.SCHEDULES),
                       help="learning-rate schedule (default: the preset's; constant for seed, mlp, cnn)")
    train.add_argument("--val-split", type=float, default=0.2)
    train.add_argument("--stratify", action="store_true", help="stratify the validation split by class")
    train.add_argument("--limit", type=int, default=None, help="train on only the first N samples")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--plain", action="store_true", help="use plain model.fit (the slow reference path)")
    train.add_argument("--drawings", action=argparse.BooleanOptionalAction, default=None,
                       help="also learn from drawing-like images (default: the preset's choice)")
    train.add_argument("--save", default=None, help="save the model to this .keras file")
    train.add_argument("--json", action="store_true", help="end with one JSON line (progress goes to stderr)")
    train.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="train as a job on a Ray cluster: auto, host:port, or local (a new local instance)")
    train.set_defaults(handler=command_train)

    predict = commands.add_parser("predict", help="classify a picture with a saved model")
    predict.add_argument("image")
    predict.add_argument("--model", required=True)
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(handler=command_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if arguments.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    try:
        return arguments.handler(arguments)
    except (ValueError, OSError) as error:  # ImageError, DataError and bad options are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ray_backend.RayUnavailableError, JobFailedError) as error:  # a cluster out of reach, a failed job
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
