"""Train: pick the settings, start a background run, watch it live, stop it, compare runs."""

from __future__ import annotations

import urllib.parse

import streamlit as st

from fmnist import baseline, links, models
from fmnist.jobs import JobStatus
from fmnist.training import TrainingConfig
from views import charts, choices, common, labels, runs, server, status
from views.language import N_, _, format_number, ngettext


@st.cache_data(show_spinner=False)
def parameter_count(preset: str) -> int:
    return models.count_parameters(preset)


DEFAULTS = TrainingConfig()
"""The textbook run: what every field shows on a first visit."""

FIELD_LIMITS = {
    N_("Epochs"): (1, 50),
    N_("Learning rate"): (0.00001, 1.0),
    N_("Training-sample limit"): (0, 60000),
    N_("Random seed"): (0, 2**31 - 1),
}
"""The number fields' ranges. The fields themselves have no min/max: Streamlit's number input keeps
an out-of-range value typed into it on screen (in red) but returns the last valid one, so Start
would train with numbers the visitor does not see. The page checks the typed value instead."""


def out_of_range(label: str, value: float) -> str | None:
    """A message naming the field when ``value`` is outside its range, else None."""
    low, high = FIELD_LIMITS[label]
    if low <= value <= high:
        return None
    return _("{field}: {value} is out of range. Enter a value from {low} to {high}.").format(
        field=_(label), value=f"{value:g}", low=f"{low:g}", high=f"{high:g}")


def apply_preset_defaults() -> None:
    """When the visitor picks another preset, the fields take that preset's own training defaults
    (the Minute CNN trains 7 epochs of Adam at batch 128, the textbook presets 5 of RMSprop at 32).

    Only for a preset other than the one kept: coming back from another page, the selectbox is drawn
    anew, and its change callback fired now and then (once in a full browser-test run) for the
    same preset, which put its default epochs over the visitor's."""
    if choices.kept("train_preset") == st.session_state["train_preset"]:
        return
    config = TrainingConfig(preset=st.session_state["train_preset"])
    defaults = {"train_loss": config.loss, "train_epochs": config.epochs, "train_optimizer": config.optimizer,
                f"train_learning_rate_{config.optimizer}": config.effective_learning_rate,
                "train_batch_size": config.batch_size, "train_schedule": config.schedule}
    if not models.PRESETS[config.preset].is_keras:  # the Keras fields stay as they were, shown disabled
        defaults = {"train_epochs": config.epochs}
    for key, value in defaults.items():
        # Only the fields whose value changes: a field written here is sent back to the browser, and
        # on a busy server that can arrive after the visitor has typed into it, putting the default
        # back over their number (the seed, MLP and CNN presets all train 5 epochs: between them, Epochs
        # is left alone).
        if st.session_state.get(key) != value:
            st.session_state[key] = value
        choices.keep(key, value)


LINK_KEY = "train_link_applied"


def apply_classroom_link() -> None:
    """Settings from a shared link (``?preset=...&epochs=...``) go into the fields once per link; every
    value the page cannot use is named, with why, and its field keeps its default."""
    query = st.query_params.to_dict()
    asked = {name: value for name, value in query.items() if name in links.QUERY_NAMES.values()}
    if not asked:
        return
    signature = tuple(sorted(asked.items()))
    if st.session_state.get(LINK_KEY, {}).get("signature") != signature:
        settings, rejected = links.settings_from_query(asked)
        config = TrainingConfig(**settings)
        for key, value in {"train_preset": config.preset, "train_loss": config.loss, "train_epochs": config.epochs,
                           "train_optimizer": config.optimizer,
                           f"train_learning_rate_{config.optimizer}": config.effective_learning_rate,
                           "train_batch_size": config.batch_size,
                           "train_validation_percent": round(config.validation_fraction * 100),
                           "train_sample_limit": config.sample_limit or 0, "train_seed": config.seed,
                           "train_schedule": config.schedule,
                           f"train_drawings_{config.preset}": config.uses_drawings}.items():
            st.session_state[key] = value
            choices.keep(key, value)
        st.session_state[LINK_KEY] = {"signature": signature, "rejected": rejected}
    st.info(_("These settings came from a shared link. Change any of them before you start."),
            icon=":material/link:")
    for value in st.session_state[LINK_KEY]["rejected"]:
        shown = f" “{common.plain_text(value.value)}”" if value.value else ""
        st.warning(_("The link's {parameter}{value} was not used ({reason}): that field keeps its default.").format(
            parameter=common.plain_text(value.parameter), value=shown, reason=labels.link_reason(value.reason)),
            icon=":material/link_off:")


def render_share_link(config: TrainingConfig) -> None:
    """A link that opens the Train page with these settings, for a whole class."""
    query = {**links.query_from_config(config), "lang": st.query_params.get("lang", "en")}
    base = (st.context.url or "").split("?")[0]
    with st.popover(_("Share these settings"), icon=":material/share:"):
        st.caption(_("Students who open this link get the Train page with exactly these settings."))
        st.code(f"{base}?{urllib.parse.urlencode(query)}", language=None, wrap_lines=True)


def number_field(label: str, key: str, default: float, **options) -> tuple[float, str | None]:
    """A number input whose value survives page changes; returns (value, message if out of range)."""
    choices.restore(key, default)
    value = choices.keep(key, st.number_input(_(label), key=key, **options))
    return value, out_of_range(label, value)


def read_settings() -> TrainingConfig | None:
    """The controls; returns the user's choices as a config, or None after showing what is wrong."""
    problems = []
    left, middle, right = st.columns(3)
    with left:
        choices.restore("train_preset", DEFAULTS.preset)
        preset = choices.keep("train_preset", st.selectbox(
            _("Model preset"), list(models.PRESETS), key="train_preset", on_change=apply_preset_defaults,
            format_func={name: labels.preset_title(name) for name in models.PRESETS}.__getitem__))
        st.caption(labels.preset_description(preset))
        keras_only = not models.PRESETS[preset].is_keras  # the baseline: these settings are shown, disabled
        if server.tensorflow_warmup().ready.is_set():
            count = parameter_count(preset)
            st.caption(ngettext("{count} trainable parameter", "{count} trainable parameters", count).format(
                count=format_number(count)))
        choices.restore("train_loss", DEFAULTS.loss)
        loss = choices.keep("train_loss", st.selectbox(
            _("Loss"), list(models.LOSSES), key="train_loss", disabled=keras_only,
            format_func={name: labels.short_loss(name) for name in models.LOSSES}.__getitem__,
            help=_("Cross-entropy is the natural loss for classes; mean squared error shows why.")))
        st.caption(labels.loss_text(loss))
        epochs, problem = number_field(N_("Epochs"), "train_epochs", DEFAULTS.epochs, step=1)
        problems.append(problem)
    with middle:
        choices.restore("train_validation_percent", round(DEFAULTS.validation_fraction * 100))
        validation_percent = choices.keep("train_validation_percent", st.slider(
            _("Validation split (%)"), min_value=5, max_value=50, step=1, key="train_validation_percent",
            help=_("Share of the training images held out to validate each epoch.")))
        choices.restore("train_optimizer", DEFAULTS.optimizer)
        optimizer = choices.keep("train_optimizer", st.selectbox(_("Optimizer"), list(models.OPTIMIZERS),
                                                                 key="train_optimizer", disabled=keras_only))
        learning_rate, problem = number_field(N_("Learning rate"), f"train_learning_rate_{optimizer}",
                                              models.OPTIMIZERS[optimizer], step=0.0005, format="%.5f",
                                              disabled=keras_only)
        problems.append(problem)
        choices.restore("train_schedule", DEFAULTS.schedule)
        schedule = choices.keep("train_schedule", st.selectbox(
            _("Learning-rate schedule"), list(models.SCHEDULES), key="train_schedule", disabled=keras_only,
            format_func={name: labels.schedule_text(name).split(":")[0] for name in models.SCHEDULES}.__getitem__,
            help=_("Constant keeps the rate; one-cycle warms it up, then lowers it along a cosine to the end.")))
    with right:
        choices.restore("train_batch_size", DEFAULTS.batch_size)
        batch_size = choices.keep("train_batch_size", st.select_slider(
            _("Batch size"), options=[8, 16, 32, 64, 128, 256, 512], key="train_batch_size",
            disabled=keras_only))
        sample_limit, problem = number_field(
            N_("Training-sample limit"), "train_sample_limit", 0, step=1000,
            help=_("Train on only the first N training items: 0 means all of them. "
                   "5,000 makes a classroom demo take seconds."))
        problems.append(problem)
        seed, problem = number_field(N_("Random seed"), "train_seed", DEFAULTS.seed, step=1)
        problems.append(problem)
        drawings_key = f"train_drawings_{preset}"
        choices.restore(drawings_key, models.PRESETS[preset].drawings_by_default)
        drawings = choices.keep(drawings_key, st.toggle(
            _("Also learn from drawings"), key=drawings_key, disabled=keras_only,
            help=_("Adds outlines, flat silhouettes and mirror images of the training items, so drawings on "
                   "Try it are recognised. On by default for the recommended preset.")))
    if keras_only:
        st.caption(_("The textbook baseline is scikit-learn's SGDClassifier: it always uses log loss (the same "
                     "quantity as sparse categorical cross-entropy), its own SGD with the 'optimal' learning-rate "
                     "schedule, one image at a time, and no drawings. The greyed-out settings do not apply to it; "
                     "the epochs, validation split, sample limit and seed do."))
        problems = problems[:1] + problems[2:]  # not the learning rate's: it does not apply
    problems = [problem for problem in problems if problem]
    if problems:
        for problem in problems:
            st.error(problem, icon=":material/error:")
        return None
    try:
        if keras_only:
            return TrainingConfig(preset=preset, epochs=int(epochs), validation_fraction=validation_percent / 100,
                                  sample_limit=int(sample_limit) or None, seed=int(seed))
        return TrainingConfig(preset=preset, loss=loss, optimizer=optimizer, learning_rate=float(learning_rate),
                              epochs=int(epochs), batch_size=int(batch_size), schedule=schedule,
                              validation_fraction=validation_percent / 100,
                              sample_limit=int(sample_limit) or None, seed=int(seed),
                              drawings=None if drawings == models.PRESETS[preset].drawings_by_default else drawings)
    except ValueError as error:
        st.error(server.in_english_only(str(error), _("These settings cannot be trained together: {reason}").format(
            reason=error)))
        return None


def render_live_panel() -> None:
    """Polled by a fragment while a run is active: status, progress with ETA, Stop, live charts."""
    record = runs.active_run() or (runs.session_runs()[-1] if runs.session_runs() else None)
    if record is None:
        return
    snapshot = record.job.snapshot()
    if record.job.done and st.session_state.get("live_run_id") == record.run_id:
        st.session_state.pop("live_run_id")
        st.session_state["train_unfold_settings"] = True
        st.rerun(scope="app")  # the run ended: redraw the whole page once (run list, buttons)
    st.subheader(ngettext("{run}: {preset}, {count} epoch", "{run}: {preset}, {count} epochs",
                          record.config.epochs).format(run=record.name, preset=labels.preset_title(record.config.preset),
                                                       count=record.config.epochs), anchor="live-run")
    status_column, stop = st.columns([5, 1])
    if snapshot.status is JobStatus.FAILED:
        status_column.error(status.status_text(snapshot))
    else:
        status_column.progress(status.progress_fraction(snapshot), text=status.status_text(snapshot))
    if not record.job.done and stop.button(_("Stop"), icon=":material/stop_circle:", key="train_stop",
                                           disabled=snapshot.stop_requested, width="stretch"):
        record.job.request_stop()
    if snapshot.epochs or snapshot.points or record.job.done:
        render_history_charts(snapshot.epochs, compact=not record.job.done, points=snapshot.points)
    else:  # queued or setting up: two empty charts, redrawn every second, would only cost the browser
        st.caption(_("The loss and accuracy charts start with the run's first steps."))
    if not record.job.done:
        render_run_history()  # the table follows the live run (the page below it only redraws at the end)


def render_history_charts(reports, compact: bool = False, points=()) -> None:
    """Loss and accuracy per epoch, side by side; a part-way epoch is marked as such. ``points``
    (the running training loss and accuracy within epochs) draw the curve between epoch points;
    while an epoch validates, its latest validation point shows the validation so far."""
    points, validating = charts.live_points(reports, points)
    positions = [point.position for point in points]
    epochs = [report.epoch for report in reports]
    partial = {report.epoch for report in reports if not report.complete}
    height = 300 if compact else 340
    loss_chart, accuracy_chart = st.columns(2)
    loss_chart.plotly_chart(charts.history_figure(
        [(_("training loss"), epochs, [r.loss for r in reports], "solid"),
         (_("validation loss"), epochs, [r.val_loss for r in reports], "dash")],
        _("Loss"), _("loss"), partial_epochs=partial, height=height,
        live_curve=(_("training loss, within epochs"), positions, [p.loss for p in points]),
        validating=validating and (_("validation loss, so far"), validating.epoch, validating.loss)),
        key="live_loss_chart")
    accuracy_chart.plotly_chart(charts.history_figure(
        [(_("training accuracy"), epochs, [r.accuracy for r in reports], "solid"),
         (_("validation accuracy"), epochs, [r.val_accuracy for r in reports], "dash")],
        _("Accuracy"), _("accuracy"), reference_lines=True, partial_epochs=partial, height=height,
        live_curve=(_("training accuracy, within epochs"), positions, [p.accuracy for p in points]),
        validating=validating and (_("validation accuracy, so far"), validating.epoch, validating.accuracy)),
        key="live_accuracy_chart")


def history_rows(records: list[runs.RunRecord]) -> list[dict]:
    """One row per run, newest first, with the state of right now."""
    rows = []
    for record in reversed(records):
        snapshot = record.job.snapshot()
        last = snapshot.epochs[-1] if snapshot.epochs else None
        rows.append({_("run"): record.name, _("status"): status.short_status(snapshot),
                     _("epochs"): status.epochs_text(snapshot),
                     _("val accuracy"): format_number(last.val_accuracy, 4) if last else "—",
                     _("val loss"): format_number(last.val_loss, 4) if last else "—",
                     _("seconds"): round(sum(r.seconds for r in snapshot.epochs), 1),
                     _("settings"): labels.describe_config(record.config)})
    return rows


def run_script(record: runs.RunRecord) -> str:
    """The run's standalone Keras script, written once per run."""
    if "script" not in record.derived:
        from fmnist import codegen

        # The script is code, the same in every language (and kept once per run): its title stays English.
        record.derived["script"] = codegen.training_script(record.config, title=f"fmnist-studio Run {record.run_id}")
    return record.derived["script"]


def render_run_code() -> None:
    """Any run as a short Keras + scikit-learn script in the textbook's style, to read or download."""
    records = runs.session_runs()
    if not records:
        return
    with st.expander(_("The code for a run: plain Keras, in the textbook's style"), icon=":material/code:"):
        record = runs.choose_run(_("Run"), "code_run", list(reversed(records)), default=records[-1].run_id)
        server.wait_for_tensorflow()
        script = run_script(record)
        if not models.PRESETS[record.config.preset].is_keras:
            st.caption(_("This run is the textbook baseline: its code is scikit-learn alone, chapter 4's "
                         "SGDClassifier loop."))
        st.download_button(_("Download the script (.py)"), script, key="download_code", icon=":material/download:",
                           file_name=f"{record.file_stem}.py", mime="text/x-python")
        st.code(script, language="python")


def render_run_history() -> None:
    records = runs.session_runs()
    if not records:
        return
    st.subheader(_("Your runs"))
    st.dataframe(history_rows(records), hide_index=True, width="stretch")


def render_comparison() -> None:
    finished = [record for record in runs.session_runs() if record.job.done and record.job.snapshot().epochs]
    if len(finished) < 2:
        return
    st.subheader(_("Compare two runs"))
    newest = finished[-1].run_id
    if st.session_state.get("compare_newest") != newest:  # a new run arrived: compare it with the one before
        st.session_state["compare_newest"] = newest
        st.session_state.pop("compare_first", None)
        st.session_state.pop("compare_second", None)
    left, right = st.columns(2)
    with left:
        first = runs.choose_run(_("First run"), "compare_first", list(reversed(finished)), default=finished[-2].run_id)
    with right:
        second = runs.choose_run(_("Second run"), "compare_second", list(reversed(finished)), default=newest)
    curves_loss, curves_accuracy = [], []
    for record, dash in ((first, "solid"), (second, "dash")):
        reports = record.job.snapshot().epochs
        epochs = [r.epoch for r in reports]
        curves_loss.append((_("{run} validation loss").format(run=record.name), epochs,
                            [r.val_loss for r in reports], dash))
        curves_accuracy.append((_("{run} validation accuracy").format(run=record.name), epochs,
                                [r.val_accuracy for r in reports], dash))
    loss_chart, accuracy_chart = st.columns(2)
    loss_chart.plotly_chart(charts.history_figure(curves_loss, _("Validation loss"), _("loss")), key="compare_loss")
    accuracy_chart.plotly_chart(charts.history_figure(curves_accuracy, _("Validation accuracy"), _("accuracy"),
                                                      reference_lines=True), key="compare_accuracy")
    st.caption(_("Losses are on different scales (mean squared error is far smaller than cross-entropy): "
                 "compare accuracies across losses, losses within one loss."))
    presets = {first.config.preset, second.config.preset}
    if presets == {"seed", models.BASELINE_PRESET}:
        st.info(_("Same model family: a softmax Dense(10) and a log-loss SGDClassifier are both logistic regression "
                  "on the 784 pixels, trained differently (Keras' softmax over ten classes; scikit-learn's SGD, "
                  "one class against the rest)."), icon=":material/compare_arrows:")
    elif models.BASELINE_PRESET in presets and len(presets) == 2:
        st.info(_("The baseline is logistic regression on the pixels, like the seed preset's Dense(10); this "
                  "network's hidden layers let it learn more than a linear model can."), icon=":material/compare_arrows:")


def render_estimate(config: TrainingConfig, dataset) -> None:
    estimate = server.run_timing().estimate(config, len(dataset.x_train))
    st.caption(ngettext("Estimated time on this server: {total} for {count} epoch ({epoch} per epoch{basis}; "
                        "longer while others train).",
                        "Estimated time on this server: {total} for {count} epochs ({epoch} per epoch{basis}; "
                        "longer while others train).", config.epochs).format(
        total=status.about(estimate.total_seconds), count=config.epochs, epoch=status.about(estimate.epoch_seconds),
        basis=labels.estimate_basis(estimate)))


KEEP_LIVE_PANEL_IN_VIEW = """<span data-fmnist-live-hold="%(run_id)d"></span><script>
(() => {
    // Start sits below the fold on a projector, so the page is scrolled when it is pressed. Then the page
    // changes under that scroll for a while (the old page's elements go, the live panel and its charts come)
    // and the browser moves the scroll to keep some element in place. One scroll, made once, lands wherever
    // it happens to fire: keep the heading at the top until the charts have been drawn for a while (or the
    // time is up), unless the visitor scrolls, clicks or types. The next full redraw of the page (the run
    // ended, or the visitor changed a setting) removes the marker above, and ends the hold too.
    const chartsSettledMilliseconds = %(charts_settled)d, longestMilliseconds = %(longest)d;
    const startedAt = performance.now(), listening = new AbortController();
    let released = false, chartsSince = null;
    for (const type of ["wheel", "touchstart", "keydown", "pointerdown"]) {
        window.addEventListener(type, () => { released = true; },  // the visitor took over
                                {capture: true, passive: true, signal: listening.signal});
    }
    const keep = () => {
        const now = performance.now();
        if (!document.querySelector('[data-fmnist-live-hold="%(run_id)d"]')) released = true;
        if (!released) document.getElementById("live-run")?.scrollIntoView({block: "start"});
        const charts = document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot').length;
        chartsSince = charts >= 2 ? (chartsSince ?? now) : null;
        if (released || now - startedAt > longestMilliseconds
                || (chartsSince !== null && now - chartsSince > chartsSettledMilliseconds)) listening.abort();
        else setTimeout(keep, 100);
    };
    setTimeout(keep, 100);
})();
</script>"""
# How long the live panel is held at the top after Start: until its charts have been on the page for 3 s,
# 30 s at most (a queued run has no charts yet).
CHARTS_SETTLED_MILLISECONDS, LONGEST_HOLD_MILLISECONDS = 3000, 30000


def hold_live_panel_in_view(run_id: int) -> None:
    """Bring the live run's heading to the top of the screen right after Start, and keep it there while the
    page settles (the browser would otherwise keep the scroll position of the settings, and push the status
    and charts off the screen)."""
    st.html(KEEP_LIVE_PANEL_IN_VIEW % {"run_id": run_id, "charts_settled": CHARTS_SETTLED_MILLISECONDS,
                                       "longest": LONGEST_HOLD_MILLISECONDS}, unsafe_allow_javascript=True)


def render() -> None:
    st.title(_("Train a network"))
    dataset = server.load_dataset_or_stop()
    active = runs.active_run()
    if st.session_state.pop("train_fold_settings", False):
        st.session_state["train_settings_open"] = False
    if st.session_state.pop("train_unfold_settings", False):
        st.session_state["train_settings_open"] = True
    if active is None:
        st.caption(_("The defaults reproduce the textbook run: the seed preset, sparse categorical cross-entropy, "
                     "RMSprop, 5 epochs, batch 32, 20% validation, seed 42 (about 85% validation accuracy)."))
    else:
        st.session_state["live_run_id"] = active.run_id
        # The live run first, so that status, both charts and Stop fit on one screen (a projector too).
        st.fragment(run_every=runs.LIVE_REFRESH_SECONDS)(render_live_panel)()
        if st.session_state.pop("train_hold_live_panel", False):
            hold_live_panel_in_view(active.run_id)
    choices.restore("train_settings_open", True)
    with st.expander(_("Settings"), key="train_settings_open", on_change="rerun", icon=":material/tune:"):
        apply_classroom_link()
        config = read_settings()
        if config is not None:
            render_estimate(config, dataset)
            render_share_link(config)
        start = st.button(_("Start training"), type="primary", icon=":material/play_arrow:", key="train_start",
                          disabled=config is None or active is not None,
                          help=_("One run at a time per visitor; stop the current run to start another.")
                          if active else None)
        start_baseline = config is not None and models.PRESETS[config.preset].is_keras and st.button(
            _("Train the textbook baseline"), icon=":material/school:", key="train_baseline",
            disabled=active is not None,
            help=_("Chapter 4's classic: scikit-learn's SGDClassifier(loss=\"log_loss\"), one partial_fit per "
                   "epoch, on these settings' split, seed, sample limit and epochs. Compare it with a run below."))
    choices.keep("train_settings_open", st.session_state.get("train_settings_open", True))
    if start_baseline and active is None:
        config, start = baseline.baseline_config(config), True
    if start and config is not None and active is None:
        server.wait_for_tensorflow()
        record = runs.start_run(config, dataset)
        st.session_state["live_run_id"] = record.run_id
        st.session_state["train_fold_settings"] = True
        st.session_state["train_hold_live_panel"] = True
        st.rerun()  # redraw with the run active: settings folded, live panel first and polling
    if active is None:
        render_live_panel()
        render_run_history()
    render_comparison()
    render_run_code()


render()
