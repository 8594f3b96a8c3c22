"""``python -m bench``: run the benchmark groups, print a table, and end with one JSON line.

Options: ``--quick`` (the small settings, under 3 minutes on 2 cores), ``--only engine,data``
(any of engine, data, strong, browser, memory, load), ``--json-out PATH`` (also write the JSON there)
and ``--app PATH`` (the Streamlit script the browser groups drive; the repository's ``app.py``
by default).

A group that fails records an error for its keys and the run goes on; the exit code is 0
whenever the run completed, whether or not the targets were met.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench import measure, report

GROUP_MODULES = {
    "engine": "bench.engine",
    "data": "bench.data_speed",
    "strong": "bench.strong",  # before load, which shortens its waits to what is left of the time
    "browser": "bench.browser",
    "memory": "bench.memory",
    "load": "bench.load",
    "drawings": "bench.drawings",
}

QUICK_SECONDS = 170
"""The quick run ends within this (under 3 minutes): the load group shortens its waits to fit."""
FULL_SECONDS = 1800


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmark fmnist-studio: a table, then one JSON line.")
    parser.add_argument("--quick", action="store_true", help="small settings: the whole run in under 3 minutes")
    parser.add_argument("--only", default=",".join(GROUP_MODULES),
                        help=f"comma-separated groups to run (default: all of {', '.join(GROUP_MODULES)})")
    parser.add_argument("--json-out", type=Path, help="also write the JSON summary to this file")
    parser.add_argument("--streamlit-option", action="append", default=[], metavar="NAME=VALUE",
                        help="pass --NAME VALUE to `streamlit run` (repeatable), e.g. runner.postScriptGC=false "
                             "to try a setting before changing the app; none by default")
    parser.add_argument("--ray", nargs="?", const="local", default="", metavar="ADDRESS",
                        help="the load group's server trains on Ray (FMNIST_RAY_ADDRESS): local (the default "
                             "when given without a value: a new local instance with the machine's cores), auto "
                             "or host:port; without it, in the server's own threads")
    parser.add_argument("--app", type=Path, default=measure.REPOSITORY / "app.py",
                        help="the Streamlit app for the browser groups (default: the repository's app.py)")
    arguments = parser.parse_args(argv)
    groups = [name.strip() for name in arguments.only.split(",") if name.strip()]
    unknown = [name for name in groups if name not in GROUP_MODULES]
    if unknown or not groups:
        parser.error(f"unknown group(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(GROUP_MODULES)}")
    arguments.groups = [name for name in GROUP_MODULES if name in groups]
    malformed = [option for option in arguments.streamlit_option if "=" not in option]
    if malformed:
        parser.error(f"--streamlit-option needs NAME=VALUE, not {malformed[0]!r}")
    return arguments


def run_group(name: str, settings: measure.Settings) -> tuple[dict[str, object], dict[str, str]]:
    """One group's metrics, or its keys marked with the error that stopped it."""
    module = importlib.import_module(GROUP_MODULES[name])
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stray prints must not break the JSON line
            metrics = module.run(settings)
        partial_errors = metrics.pop("errors", {}) if isinstance(metrics.get("errors"), dict) else {}
        return metrics, partial_errors
    except Exception as error:  # noqa: BLE001 - one failing group must not end the whole run
        message = f"{type(error).__name__}: {error}".strip().splitlines()[0][:300]
        measure.progress(f"{name}: FAILED: {message}")
        traceback.print_exc(file=sys.stderr)
        return {}, dict.fromkeys(module.KEYS, message)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    started = time.perf_counter()
    load_average_start = round(os.getloadavg()[0], 2)
    settings = measure.Settings(
        quick=arguments.quick, app_path=arguments.app.resolve(),
        deadline=time.monotonic() + (QUICK_SECONDS if arguments.quick else FULL_SECONDS),
        memory_with_browser={"browser", "memory"} <= set(arguments.groups),
        streamlit_options=tuple(tuple(option.split("=", 1)) for option in arguments.streamlit_option),
        ray_address=arguments.ray)
    metrics: dict[str, object] = {}
    errors: dict[str, str] = {}
    group_keys: dict[str, list[str]] = {}
    group_seconds: dict[str, float] = {}
    memory_module = importlib.import_module(GROUP_MODULES["memory"])
    for name in arguments.groups:
        if name == "memory" and settings.memory_with_browser:
            continue  # measured by the browser group, on its server
        measure.progress(f"{name}: starting ({'quick' if settings.quick else 'full'} mode)")
        group_started = time.perf_counter()
        group_metrics, group_errors = run_group(name, settings)
        group_seconds[name] = round(time.perf_counter() - group_started, 1)
        measure.progress(f"{name}: done in {group_seconds[name]:.0f} s")
        metrics.update(group_metrics)
        errors.update(group_errors)
        keys = list(dict.fromkeys([*group_metrics, *group_errors]))
        if name == "browser" and settings.memory_with_browser:
            group_keys["browser"] = [key for key in keys if not memory_module.owns(key)]
            group_keys["memory"] = [key for key in keys if memory_module.owns(key)] or list(memory_module.KEYS)
            for key in memory_module.KEYS:
                if key not in metrics and key not in errors:
                    errors[key] = "the browser group ended before the memory measurements"
        else:
            group_keys[name] = keys
    for key in errors:
        metrics.setdefault(key, None)
    group_keys = {name: group_keys[name] for name in arguments.groups if name in group_keys}

    summary: dict[str, object] = {
        "mode": "quick" if settings.quick else "full",
        "backend": f"ray ({settings.ray_address})" if settings.ray_address else "threads",
        "groups": arguments.groups,
        "cpu_count": os.cpu_count(),
        "streamlit_options": dict(settings.streamlit_options),
        "wall_s": round(time.perf_counter() - started, 1),
        "load_average_start": load_average_start,
        "load_average_end": round(os.getloadavg()[0], 2),
        "group_seconds": group_seconds,
        **metrics,
        "errors": errors,
    }
    summary["targets"] = {key: entry for key, entry in report.evaluate_targets(metrics, errors).items()
                          if any(key in keys for keys in group_keys.values())}
    print(report.format_table(summary, group_keys))
    line = report.to_json_line(summary)
    if arguments.json_out:
        arguments.json_out.parent.mkdir(parents=True, exist_ok=True)
        arguments.json_out.write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
