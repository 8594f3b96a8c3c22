"""The Korean/English interface: catalogues complete and in step with the code, pages free of English in Korean."""

import re
from pathlib import Path

import pytest
from apptest_support import REPO_ROOT, quick_train, session_runs, shown_texts
from babel.messages import extract, pofile

from views import language

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


@pytest.mark.parametrize("page", ["views/game.py", "views/inside.py"])
def test_a_page_in_korean_shows_no_english_sentence_of_the_catalogue(new_session, page, monkeypatch):
    at = new_session()
    at.query_params["lang"] = "ko"
    at.switch_page(page).run()
    quick_train(at, "play" if page.endswith("game.py") else "look inside")
    assert not at.exception
    texts = [*shown_texts(at), *(title.value for title in at.title), *(header.value for header in at.subheader),
             *(metric.label for metric in at.metric), *(button.label for button in at.button)]
    leftovers = {sentence for sentence in english_sentences() for text in texts if sentence in text}
    assert leftovers == set()
    assert any("사람 대 모델" in text or "모델 들여다보기" in text for text in texts)


def test_the_language_comes_from_the_link_then_the_choice_and_switching_keeps_the_runs(new_session):
    at = new_session()
    at.query_params["lang"] = "ko"
    at.switch_page("views/game.py").run()
    assert [title.value for title in at.title] == ["사람 대 모델"]
    quick_train(at, "play")
    runs_before = [record.run_id for record in session_runs(at)]

    at.segmented_control(key="language_choice").set_value("en").run()

    assert not at.exception
    assert [title.value for title in at.title] == ["Human vs model"]
    assert at.query_params["lang"] == "en"
    assert [record.run_id for record in session_runs(at)] == runs_before
