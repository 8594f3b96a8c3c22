"""The core package never imports Streamlit, and its light modules do not load TensorFlow.

Each check runs in a fresh interpreter, so what other tests imported cannot hide or fake a result.
"""

import json
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

import fmnist

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = pathlib.Path(fmnist.__file__).parent
STREAMLIT_IMPORT = re.compile(
    r"^\s*(import\s+streamlit\b|from\s+streamlit\b|.*import_module\(\s*['\"]streamlit|.*__import__\(\s*['\"]streamlit)",
    re.MULTILINE)
LIGHT_MODULES = ["fmnist.data", "fmnist.models", "fmnist.training", "fmnist.jobs", "fmnist.preprocess",
                 "fmnist.evaluation", "fmnist.cli"]


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True,
                               timeout=300, check=False, env={"PYTHONPATH": str(REPOSITORY), "PATH": "/usr/bin:/bin",
                                                              "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def core_module_names() -> list[str]:
    return sorted(f"fmnist.{module.name}" for module in pkgutil.iter_modules([str(PACKAGE)]))


def test_the_module_list_is_complete():
    names = core_module_names()
    assert {"fmnist.data", "fmnist.training", "fmnist.jobs", "fmnist.cli", "fmnist.__main__"} <= set(names)
    assert set(LIGHT_MODULES) <= set(names)


def test_no_core_file_has_a_streamlit_import():
    offenders = {path.name: match.group(0).strip() for path in sorted(PACKAGE.glob("*.py"))
                 for match in [STREAMLIT_IMPORT.search(path.read_text())] if match}
    assert offenders == {}


def test_the_static_check_recognises_streamlit_imports():
    for line in ("import streamlit as st", "    from streamlit.runtime import exists",
                 "module = importlib.import_module('streamlit')"):
        assert STREAMLIT_IMPORT.search(f"x = 1\n{line}\n"), line
    assert not STREAMLIT_IMPORT.search('"""Nothing here knows about Streamlit."""\nimport streamlit_helpers_free\n')


@pytest.fixture(scope="module")
def fresh_import_report() -> dict:
    """In a fresh interpreter: import the light modules and use what the UI uses before training,
    note the heavy packages loaded so far, then import every other module and run ``python -m fmnist --help``."""
    return run_python(f"""
import importlib, json, runpy, sys
heavy = ("tensorflow", "keras", "sklearn", "streamlit")
for name in {LIGHT_MODULES!r}:
    importlib.import_module(name)
from fmnist import data, jobs, models, training
config = training.TrainingConfig(preset="cnn", epochs=3)
try:
    training.TrainingConfig(epochs=0)
except ValueError:
    pass
details = (config.describe(), training.estimate_epoch_seconds(config, 60000), models.get_preset("mlp").description,
           sorted(models.LOSSES), data.default_cache_dir(), jobs.JobManager(max_concurrent=1).max_concurrent)
after_light_modules = sorted(name for name in heavy if name in sys.modules)
for name in {core_module_names()!r}:
    if name != "fmnist.__main__":
        importlib.import_module(name)
sys.argv = ["fmnist", "--help"]
try:
    runpy.run_module("fmnist", run_name="__main__")
    main_exit_code = None
except SystemExit as exit:
    main_exit_code = exit.code
print(json.dumps({{"after_light_modules": after_light_modules, "main_exit_code": main_exit_code,
                  "imported": sorted(name for name in sys.modules if name.startswith("fmnist")),
                  "streamlit": sorted(name for name in sys.modules if name.split(".")[0] == "streamlit")}}))
""")


def test_importing_every_core_module_does_not_load_streamlit(fresh_import_report):
    assert set(core_module_names()) - {"fmnist.__main__"} <= set(fresh_import_report["imported"])
    assert fresh_import_report["main_exit_code"] == 0, "python -m fmnist --help ran"
    assert fresh_import_report["streamlit"] == []


def test_light_modules_do_not_load_tensorflow(fresh_import_report):
    assert fresh_import_report["after_light_modules"] == []
