"""Targets, the summary dictionary, the table for people and the one-line JSON for machines."""

from __future__ import annotations

import dataclasses
import json
import math
import operator
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Target:
    """``key`` must compare to ``bound`` with ``relation`` (``>=``, ``<=`` or ``==``)."""

    key: str
    relation: str
    bound: float
    bound_when: tuple[str, float] | None = None
    """(flag key, bound): the bound instead when the run's flag key is true (a target with an option on)."""
    judged_by: str | None = None
    """A key judged instead of ``key`` when the run has it: the mean over the seeds of a full run,
    for a preset's accuracy, of which one seed alone says less than the seeds' spread (about 0.01)."""

    def judged_key(self, metrics: dict[str, object]) -> str:
        """``judged_by`` when the run has it, else ``key``."""
        return self.judged_by if self.judged_by and metrics.get(self.judged_by) is not None else self.key

    def bound_for(self, metrics: dict[str, object] | None = None) -> float:
        if self.bound_when and metrics and metrics.get(self.bound_when[0]) is True:
            return self.bound_when[1]
        return self.bound

    def met(self, value: object, metrics: dict[str, object] | None = None) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return False
        comparisons: dict[str, Callable[[float, float], bool]] = {
            ">=": operator.ge, "<=": operator.le, "==": operator.eq}
        return comparisons[self.relation](float(value), self.bound_for(metrics))

    def describe(self, metrics: dict[str, object] | None = None) -> str:
        return f"{self.relation} {self.bound_for(metrics):g}"


TARGETS: tuple[Target, ...] = (
    Target("engine_speedup_seed", ">=", 8),
    Target("seed_metrics_max_abs_diff", "<=", 0.001),
    Target("seed_five_epochs_s", "<=", 1.0),
    Target("concurrent_seed_max_abs_diff", "<=", 1e-6),
    Target("rss_growth_per_run_mb", "<=", 6),
    Target("cnn_engine_speedup", ">=", 1.5),
    Target("cache_load_s", "<=", 0.5),
    Target("predict_p95_ms", "<=", 50),
    Target("occlusion_p95_ms", "<=", 300),
    Target("first_page_s", "<=", 3),
    Target("start_to_first_epoch_s", "<=", 3),
    Target("rss_mb", "<=", 800),
    Target("rss_per_session_mb", "<=", 60),
    Target("load_sessions_completed", "==", 10),
    Target("eleventh_visitor_first_page_s", "<=", 5),
    Target("strong_model_test_accuracy", ">=", 0.92),
    # At the preset's defaults; with its drawing option on, the issue allows 75 s.
    Target("strong_model_seconds", "<=", 60, bound_when=("strong_model_drawings", 75)),
    Target("strong_model_seconds_without_drawings", "<=", 60),
    Target("strong_model_test_accuracy_without_drawings", ">=", 0.92),
    Target("strong_model_drawing_accuracy_cost", "<=", 0.005),
    Target("strong_model_drawing_time_ratio", "<=", 1.30),
    Target("strong_model_eta_error_max", "<=", 0.20),
    Target("drawing_outline_accuracy", ">=", 0.80, judged_by="drawing_outline_accuracy_mean"),
    Target("drawing_filled_accuracy", ">=", 0.80, judged_by="drawing_filled_accuracy_mean"),
)

LABELS: dict[str, str] = {
    "drawing_outline_accuracy": "recommended preset: accuracy on outline drawings",
    "drawing_filled_accuracy": "recommended preset: accuracy on coloured-in drawings",
    "drawing_test_accuracy": "recommended preset: test accuracy (as Try it predicts)",
    "drawing_training_s": "recommended preset: training s (with drawings)",
    "peak_matmul_gflops": "CPU peak: float32 1024² matmul (GFLOP/s)",
    "engine_speedup": "speed-up: plain s/epoch ÷ engine s/epoch",
    "engine_speedup_fastest": "speed-up from each path's fastest epoch",
    "plain_epoch_s": "plain fit: s/epoch, steady (median after 1st)",
    "engine_epoch_s": "engine: s/epoch, steady (median after 1st)",
    "plain_first_epoch_s": "plain fit: first epoch s (incl. compile)",
    "engine_first_epoch_s": "engine: first epoch s (incl. compile)",
    "plain_total_s": "plain fit: whole run s (prep+compile+fit)",
    "engine_total_s": "engine: whole run s (prep+compile+fit)",
    "flops_per_epoch": "training FLOPs/epoch (3 × fwd × samples)",
    "floor_epoch_s": "compute floor s/epoch at matmul peak",
    "plain_gflops": "plain fit: achieved GFLOP/s",
    "engine_gflops": "engine: achieved GFLOP/s",
    "training_samples": "training samples per epoch",
    "epochs": "epochs per run",
    "rounds": "rounds (each: plain + engine)",
    "seed_metrics_max_abs_diff": "seed: max |plain − engine| over 4 metrics",
    "metrics_max_abs_diff": "max |plain − engine| over 4 metrics",
    "seed_five_epochs_s": "seed: 5 epochs on 48,000 via train(), after warm-up (s)",
    "seed_five_epochs_cpu_s": "  its CPU seconds (all threads)",
    "seed_five_epochs_first_epoch_s": "  its first epoch (s)",
    "seed_five_epochs_compiling_s": "seed: the same with a fresh engine, compile incl. (s)",
    "seed_five_epochs_compiling_cpu_s": "  its CPU seconds (all threads)",
    "seed_five_epochs_compiling_first_epoch_s": "  its first epoch (incl. compilation, s)",
    "concurrent_seed_max_abs_diff": "seed 42 alone vs beside an mlp run: max |diff|",
    "rss_growth_per_run_mb": "RSS growth per run, run 6 to the last (MB)",
    "rss_after_run_1_mb": "RSS after run 1 (MB)",
    "rss_after_run_6_mb": "RSS after run 6 (MB)",
    "rss_after_run_10_mb": "RSS after run 10 (MB)",
    "rss_after_run_12_mb": "RSS after run 12 (MB)",
    "cnn_engine_speedup": "cnn: engine speed-up at batch 32 (= engine_speedup_cnn)",
    "cnn_step_cpu_ms_plain_fit": "cnn batch-32 step, plain fit: CPU ms",
    "cnn_step_cpu_ms_while_loop": "  Keras train_step in one while loop, no input: CPU ms",
    "cnn_step_cpu_ms_forward": "  forward pass alone: CPU ms",
    "cnn_engine_speedup_bound": "cnn: best any engine can do (plain ÷ while loop)",
    "cache_load_s": "load_dataset() from warm cache, median of 5 (s)",
    "cache_load_max_s": "load_dataset() slowest of 5 (s)",
    "predict_p50_ms": "one upload: prepare + predict, p50 (ms)",
    "predict_p95_ms": "one upload: prepare + predict, p95 (ms)",
    "predict_max_ms": "one upload: prepare + predict, max (ms)",
    "prepare_p95_ms": "prepare_image alone, p95 (ms)",
    "model_p95_ms": "predict_probabilities alone, p95 (ms)",
    "predict_first_ms": "first upload after training (ms, not in p95)",
    "predict_images": "pictures timed",
    "predict_rejected": "pictures refused by prepare_image",
    "occlusion_p50_ms": "why panel: occlusion saliency, p50 (ms)",
    "occlusion_p95_ms": "why panel: occlusion saliency, p95 (ms)",
    "occlusion_max_ms": "why panel: occlusion saliency, max (ms)",
    "port_open_s": "launch → server port open (s)",
    "first_page_data_s": "launch → first page shows the dataset (s)",
    "server_settled_s": "launch → server RSS settled (TF imported) (s)",
    "first_page_s": "launch → first page rendered (s)",
    "start_to_first_epoch_s": "1st training: Start → 'Epochs done: 1' (s)",
    "start_to_finished_s": "Start pressed → 'Training finished' (2 epochs, s)",
    "start_to_first_epoch_warm_s": "2nd training: Start → 'Epochs done: 1' (s)",
    "start_to_finished_warm_s": "2nd training (1 epoch): Start → finished (s)",
    "browser_exceptions": "pages showing a Streamlit exception",
    "rss_mb": "server RSS after Explore page rendered (MB)",
    "rss_anon_mb": "  of it: the process's own memory, RssAnon (MB)",
    "rss_file_mb": "  of it: mapped files (TensorFlow's library), RssFile (MB)",
    "rss_peak_mb": "server peak RSS, VmHWM (MB)",
    "rss_after_sessions_mb": "server RSS after 5 more sessions (MB)",
    "rss_per_session_mb": "RSS growth per idle session (MB)",
    "memory_exceptions": "pages showing a Streamlit exception",
    "load_sessions_total": "sessions (visitors)",
    "load_sessions_started": "sessions that pressed Start",
    "load_problems": "why sessions failed (count)",
    "load_sessions_completed": "sessions that showed 'Training finished'",
    "load_sessions_failed": "sessions that failed (page, Start or run)",
    "load_queued_seen": "sessions seen 'Queued, position N'",
    "load_max_queue_position": "highest queue position seen",
    "load_max_running_seen": "most pages showing a run in progress at once",
    "load_wall_s": "first Start → last 'Training finished' (s)",
    "load_session_p50_s": "per session: Start → finished, p50 (s)",
    "load_session_max_s": "per session: Start → finished, max (s)",
    "eleventh_visitor_first_page_s": "11th visitor mid-load → first page (s)",
    "eleventh_visitor_html_s": "11th visitor: → HTML received (s)",
    "eleventh_visitor_nav_s": "11th visitor: → sidebar navigation shown (s)",
    "eleventh_visitor_heading_s": "11th visitor: → page heading shown (s)",
    "load_exceptions": "pages showing a Streamlit exception",
    "load_setup_s": "opening the 10 visitors on Train (s)",
    "load_budget_s": "time allowed for watching the runs (s)",
    "load_timed_out": "gave up before all finished",
    "load_server_cpu_share": "CPU share during load: Streamlit server",
    "load_browser_cpu_share": "CPU share during load: chromium + driver",
    "load_harness_cpu_share": "CPU share during load: this harness",
    "load_other_cpu_share": "CPU share during load: rest of machine",
    "load_machine_cpu_share": "CPU share during load: whole machine",
    "strong_model_preset": "preset (the recommended one)",
    "strong_model_drawings": "its default learns from drawings",
    "strong_model_seconds_without_drawings": "without drawings: training wall s, median",
    "strong_model_test_accuracy_without_drawings": "without drawings: test accuracy, mean",
    "strong_model_drawing_accuracy_cost": "drawings' cost in test accuracy (mean)",
    "strong_model_drawing_time_ratio": "drawings' cost in time (wall ratio)",
    "strong_model_drawing_cpu_ratio": "drawings' cost in time (CPU ratio)",
    "strong_model_seconds": "training wall s, median of runs (incl. compile)",
    "strong_model_test_accuracy": "test accuracy, median of runs",
    "strong_model_test_accuracy_mean": "test accuracy, mean of runs",
    "strong_model_test_accuracies": "test accuracy of each run",
    "strong_model_run_seconds": "training wall s of each run",
    "strong_model_cpu_seconds": "process CPU s of each run",
    "strong_model_quiet_seconds_estimate": "quiet-machine estimate: CPU s ÷ threads",
    "strong_model_first_epoch_s": "first epoch s (incl. compile), median",
    "strong_model_epoch_s": "later epochs s, median",
    "strong_model_eta_error_max": "ETA error after epoch 1, worst (share of truth)",
    "strong_model_eta_error_median": "ETA error after epoch 1, median (share)",
    "strong_model_point_gap_max_s": "longest gap between live curve points (s)",
    "strong_model_point_gap_max_at": "  ending at epoch position (2.5 = mid-epoch 3)",
    "strong_model_flops_per_sample": "forward FLOPs per image",
    "strong_model_gflops": "training GFLOP/s achieved (3 × fwd, whole run)",
    "peak_matmul_gflops_float32": "CPU peak: float32 2048² matmul (GFLOP/s)",
    "peak_matmul_gflops_bfloat16": "CPU peak: bfloat16 2048² matmul (GFLOP/s)",
    "strong_model_peak_share_float32": "achieved ÷ float32 matmul peak",
    "strong_model_peak_share_bfloat16": "achieved ÷ bfloat16 matmul peak",
    "strong_model_gflops_per_cpu_s": "training GFLOP per CPU second",
    "peak_matmul_gflops_per_cpu_s_float32": "float32 matmul GFLOP per CPU second",
    "peak_matmul_gflops_per_cpu_s_bfloat16": "bfloat16 matmul GFLOP per CPU second",
    "strong_model_cpu_peak_share_float32": "per CPU second: achieved ÷ float32 peak",
    "strong_model_cpu_peak_share_bfloat16": "per CPU second: achieved ÷ bfloat16 peak",
}

GROUP_TITLES = {
    "engine": "1. Engine vs plain Keras",
    "data": "2. Data and prediction speed",
    "browser": "3. Cold start (headless chromium)",
    "memory": "4. Memory",
    "load": "5. Load: 10 concurrent sessions",
    "strong": "2b. The strong model at its defaults (the recommended preset)",
}


def label_for(key: str) -> str:
    """The people's label for a key; per-preset keys get the preset in front."""
    if key in LABELS:
        return LABELS[key]
    stem, _, preset = key.rpartition("_")
    if stem in LABELS:
        return f"{preset}: {LABELS[stem]}"
    return key


def evaluate_targets(metrics: dict[str, object], errors: dict[str, str]) -> dict[str, dict[str, object]]:
    """``key -> {target, met}`` (plus ``value``, and ``error`` when the key's group failed)."""
    targets: dict[str, dict[str, object]] = {}
    for target in TARGETS:
        judged_key = target.judged_key(metrics)
        value = metrics.get(judged_key)
        entry: dict[str, object] = {"target": target.describe(metrics), "met": target.met(value, metrics),
                                    "value": value}
        if judged_key != target.key:
            entry["judged_by"] = judged_key
        if target.key in errors:
            entry["error"] = errors[target.key]
        targets[target.key] = entry
    return targets


def _format_value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 1e6:
            return f"{value:.3g}"
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 1:
            return f"{value:.3f}".rstrip("0").rstrip(".") if magnitude >= 10 else f"{value:.3f}"
        return f"{value:.3g}"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_table(summary: dict[str, object], group_keys: dict[str, list[str]]) -> str:
    """The readable table: one section per group, a target column, errors spelled out."""
    targets = {target.key: target for target in TARGETS}
    errors: dict[str, str] = summary.get("errors", {})  # type: ignore[assignment]
    label_width = max(len(label_for(key)) for keys in group_keys.values() for key in keys) if group_keys else 20
    lines = [f"fmnist-studio benchmark ({summary['mode']} mode, {summary['cpu_count']} CPUs, "
             f"wall {summary['wall_s']:.0f} s; machine load average {summary['load_average_start']} "
             f"at start, {summary['load_average_end']} at end)"]
    for group, keys in group_keys.items():
        lines.append("")
        group_seconds = summary.get("group_seconds", {}).get(group)  # type: ignore[union-attr]
        suffix = f"  [{group_seconds:.0f} s]" if isinstance(group_seconds, (int, float)) else "  [measured in 3.]"
        lines.append(f"{GROUP_TITLES.get(group, group)}{suffix}")
        lines.append("-" * (label_width + 36))
        reported_errors: set[str] = set()
        for key in keys:
            value = summary.get(key)
            target = targets.get(key)
            if key in errors:
                message = errors[key]
                value_text = "ERROR"
                if message not in reported_errors:
                    reported_errors.add(message)
            else:
                value_text = _format_value(value)
            target_text = ""
            if target is not None:
                judged_key = target.judged_key(summary)
                met = target.met(summary.get(judged_key), summary)
                target_text = f"{target.describe(summary):>9}  {'met' if met else 'MISSED'}"
                if judged_key != key:
                    target_text += f" (judged by the mean: {_format_value(summary.get(judged_key))})"
            lines.append(f"  {label_for(key):<{label_width}}  {value_text:>12}  {target_text}")
        for message in sorted(reported_errors):
            lines.append(f"  error: {message}")
    missed = [key for key, entry in summary["targets"].items() if not entry["met"]]  # type: ignore[union-attr]
    lines.append("")
    lines.append(f"Targets met: {len(summary['targets']) - len(missed)}/{len(summary['targets'])}"  # type: ignore[arg-type]
                 + (f"; missed: {', '.join(missed)}" if missed else ""))
    return "\n".join(lines)


def to_json_line(summary: dict[str, object]) -> str:
    """The summary as one JSON object on one line (NaN becomes null)."""
    return json.dumps(summary, allow_nan=False, default=str, ensure_ascii=False, separators=(",", ":"))
