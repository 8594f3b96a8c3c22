"""The Korean/English interface: catalogues complete and in step with the code, pages free of English in Korean."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from apptest_support import REPO_ROOT, quick_train, session_runs, trouser_png, wait_for_runs_to_end
from babel.messages import extract, pofile

from fmnist import evaluation, models, preprocess, timing
from fmnist.jobs import JobStatus
from fmnist.training import TrainingConfig
from views import labels, language

KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def messages_in_code() -> set[str]:
    found = set()
    for path in [REPO_ROOT / "app.py", *sorted((REPO_ROOT / "views").glob("*.py"))]:
        with path.open("rb") as stream:
            for _, _, message, _ in extract.extract_python(stream, KEYWORDS, [], {}):
                first = message[0] if isinstance(message, tuple) else message
                if first:  # a call on a variable (``_(name)``) has nothing to extract
                    found.add(first)
    return found


def catalogue(path: Path) -> dict:
    with path.open("rb") as stream:
        return {m.id if isinstance(m.id, str) else m.id[0]: m for m in pofile.read_po(stream) if m.id}


def test_the_template_and_the_korean_catalogue_hold_exactly_the_messages_of_the_code():
    in_code = messages_in_code()
    template = set(catalogue(language.LOCALE_DIRECTORY / "messages.pot"))
    korean = set(catalogue(language.catalogue_path("ko")))
    assert in_code - template == set(), "run the pybabel extract command in locales/babel.cfg"
    assert template - in_code == set(), "messages.pot lists messages the code no longer has"
    assert in_code - korean == set(), "messages without a Korean translation"


def test_every_korean_translation_is_there_and_keeps_the_placeholders():
    for message_id, message in catalogue(language.catalogue_path("ko")).items():
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert strings and all(strings), f"no translation for {message_id!r}"
        assert "fuzzy" not in message.flags, f"fuzzy translation for {message_id!r}"
        for string in strings:
            assert sorted(PLACEHOLDER.findall(string)) == sorted(PLACEHOLDER.findall(message_id)), message_id


def english_sentences() -> set[str]:
    """Catalogue messages that read as English sentences (two words or more) and differ in Korean."""
    korean = catalogue(language.catalogue_path("ko"))
    sentences = set()
    for message_id in korean:
        literal = PLACEHOLDER.split(message_id.replace("**", ""))
        sentences.update(part.strip(" .,:;") for part in literal if len(part.strip(" .,:;").split()) >= 2)
    return sentences


def proto_strings(message) -> Iterator[str]:
    """Every string field of a protobuf message and of the messages inside it (labels, help texts, options,
    captions, markdown bodies, a chart's JSON spec with its titles, axes, legend and hover texts)."""
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        for item in values:
            if field.type == field.TYPE_STRING:
                yield item
            elif field.type == field.TYPE_MESSAGE:
                yield from proto_strings(item)


def page_strings(at) -> list[str]:
    """Every string the page and its sidebar send to the browser, plus the runs table's column names.
    Code blocks (the run's Keras script) are Python, not interface text, and left out."""
    strings, nodes = [], [at._tree]
    while nodes:
        node = nodes.pop()
        if getattr(node, "proto", None) is not None and node.type != "code":
            strings.extend(proto_strings(node.proto))
        nodes.extend(getattr(node, "children", {}).values())
    for table in at.dataframe:
        strings.extend(str(column) for column in table.value.columns)
    return strings


def english_leftovers(at) -> set[str]:
    strings = page_strings(at)
    return {sentence for sentence in english_sentences() for text in strings if sentence in text}


def test_the_check_finds_english_on_an_english_page(new_session):
    """The check below can fail: the same page in English is full of the catalogue's sentences."""
    at = new_session()
    at.query_params["lang"] = "en"
    at.switch_page("views/train.py").run()
    assert {"Train a network", "Start training", "Share of the training images held out to validate each epoch",
            "Learning-rate schedule"} <= english_leftovers(at)


PAGES = {"views/explore.py": ("패션 MNIST 둘러보기", None), "views/train.py": ("신경망 훈련하기", None),
         "views/evaluate.py": ("모델 평가", "evaluate"), "views/try_it.py": ("내 그림으로 직접 해 보기", "try"),
         "views/inside.py": ("모델 들여다보기", "look inside"), "views/game.py": ("사람 대 모델", "play")}
"""Each page: its Korean title, and the purpose of its quick-train button (None: the page has none)."""


def use_the_page(at, page: str) -> None:
    """What a visitor does on ``page`` once there is a model, so that its other parts are drawn too."""
    if page.endswith("train.py"):
        at.button(key="train_start").click().run()  # a second run: the runs table and the comparison
        wait_for_runs_to_end(at)
    elif page.endswith("evaluate.py"):
        at.button(key="lucky_draw").click().run()
        at.toggle(key="evaluate_show_animation").set_value(True).run()
    elif page.endswith("try_it.py"):
        at.file_uploader(key="try_upload").set_value(("trouser.png", trouser_png(), "image/png")).run()


@pytest.mark.parametrize("page", list(PAGES))
def test_each_page_in_korean_shows_no_english_sentence_of_the_catalogue(new_session, page):
    title, purpose = PAGES[page]
    at = new_session()
    at.query_params["lang"] = "ko"
    at.switch_page(page).run()
    assert not at.exception
    assert [heading.value for heading in at.title] == [title]
    assert english_leftovers(at) == set(), "before any model"

    if purpose is None:  # the page has no quick train: train on Evaluate's, then come back
        at.switch_page("views/evaluate.py").run()
    quick_train(at, purpose or "evaluate")
    at.switch_page(page).run()
    use_the_page(at, page)
    assert not at.exception
    assert not at.error
    assert english_leftovers(at) == set(), "with a model"
    assert any("실행 1" in text for text in page_strings(at))  # the sidebar follows the run, in Korean


def test_the_language_comes_from_the_link_then_the_choice_and_switching_keeps_the_runs(new_session):
    at = new_session()
    at.query_params["lang"] = "ko"
    at.switch_page("views/game.py").run()
    assert [title.value for title in at.title] == ["사람 대 모델"]
    quick_train(at, "play")
    at.switch_page("views/train.py").run()
    at.button(key="train_start").click().run()  # a second model, so that there is a choice to keep
    wait_for_runs_to_end(at)
    at.switch_page("views/game.py").run()
    at.selectbox(key="play_run").set_value(1).run()  # the older model
    assert at.selectbox(key="play_run").value == 1
    runs_before = [record.run_id for record in session_runs(at)]
    assert runs_before == [1, 2]

    at.segmented_control(key="language_choice").set_value("en").run()

    assert not at.exception
    assert [title.value for title in at.title] == ["Human vs model"]
    assert at.query_params["lang"] == "en"
    assert [record.run_id for record in session_runs(at)] == runs_before
    picker = at.selectbox(key="play_run")
    assert picker.value == 1 and picker.label == "Model"
    assert picker.options[picker.index].startswith("Run 1: seed, sparse categorical crossentropy")


def test_every_core_text_that_a_page_shows_has_a_korean_translation():
    """Preset names and descriptions, losses, schedules, run states and upload errors come from ``fmnist/``:
    a new or reworded one fails here until views/labels.py (or views/try_it.py) marks it and it is translated."""
    korean = catalogue(language.catalogue_path("ko"))
    texts = [text for preset in models.PRESETS.values() for text in (preset.title, preset.description)]
    texts += [*models.LOSSES.values(), *models.SCHEDULES.values(), *(state.value for state in JobStatus)]
    texts += [preprocess.UNREADABLE_MESSAGE, preprocess.DAMAGED_MESSAGE, preprocess.BLANK_MESSAGE,
              preprocess.TRANSPARENT_MESSAGE]
    assert [text for text in texts if text not in korean] == []


@pytest.mark.parametrize("config", [TrainingConfig(), TrainingConfig(preset="minute-cnn"),
                                    TrainingConfig(loss="mean_squared_error", sample_limit=5000, drawings=True),
                                    TrainingConfig(preset="sgd-classifier", sample_limit=5000)])
def test_a_runs_settings_line_in_english_is_the_cores(config):
    assert labels.describe_config(config) == config.describe()


def test_confused_pairs_and_estimate_bases_in_english_are_the_cores():
    pair = evaluation.ConfusedPair(true_label=6, predicted_label=0, count=7)
    assert labels.confused_pair(pair) == pair.describe()
    for measured_runs in (0, 1, 3):
        estimate = timing.Estimate(training_seconds=0.8, validation_seconds=0.2, setup_seconds=1.0, epochs=5,
                                   measured_runs=measured_runs)
        assert labels.estimate_basis(estimate) == estimate.basis_text


@pytest.mark.parametrize("payload", [
    trouser_png()[:120],  # cut short: a fixed message
    trouser_png() + b"\x00" * (6 * 1024 * 1024),  # over 5 MB: a message with numbers in it
    b"not a picture at all",
])
def test_an_upload_that_cannot_be_used_is_explained_in_korean(new_session, payload):
    at = new_session()
    at.query_params["lang"] = "ko"
    at.switch_page("views/try_it.py").run()
    quick_train(at, "try")
    at.file_uploader(key="try_upload").set_value(("picture.png", payload, "image/png")).run()
    assert not at.exception
    [error] = [error.value for error in at.error]
    name, why = error.split(": ", 1)
    assert name == r"picture\.png"  # the file's name, as typed (escaped for Markdown)
    assert not re.search(r"[A-Za-z]+ [A-Za-z]+", why), error  # no English words in the explanation


@pytest.mark.parametrize("query", [{"epochs": "999"}, {"lr": "abc"}, {"batch": "33"}, {"preset": "<script>"},
                                   {"drawings": "maybe"}, {"seed": "1.5"}])
def test_a_classroom_links_refusal_reasons_are_korean(query, monkeypatch):
    from fmnist import links

    monkeypatch.setattr(language, "current_language", lambda: "ko")
    _, rejected = links.settings_from_query(query)
    assert rejected, query
    for value in rejected:
        shown = labels.link_reason(value.reason)
        assert not re.search(r"[A-Za-z]{3,}", shown), (value.reason, shown)
