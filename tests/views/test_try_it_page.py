"""The Try it page through app.py: no model, an uploaded picture's prediction, bad uploads, the canvas tab.

The drawing canvas is a custom component: AppTest renders it as an element it cannot draw on,
so these tests only check that it loads without breaking the page; drawing is covered by the
browser tests.
"""

import re

import pytest
from apptest_support import quick_train, session_runs, trouser_png

from fmnist import preprocess
from views import common

TRY_IT = "views/try_it.py"
CLASS_HEADINGS = {f"### {common.class_label(label)}" for label in range(10)}


def test_without_a_model_it_says_so_and_offers_quick_train(new_session):
    at = new_session(TRY_IT)

    assert not at.exception
    assert [title.value for title in at.title] == ["Try it with your own pictures"]
    assert any(info.value.startswith("There is no trained model yet to try.") for info in at.info)
    assert not at.button(key="try_quick_train").disabled
    assert not at.file_uploader
    assert session_runs(at) == []


def test_an_uploaded_picture_gets_a_prediction(new_session):
    at = new_session(TRY_IT)
    quick_train(at, "try")

    assert not at.exception
    assert at.tabs[0].get("bidi_component")  # the drawing canvas (a custom component) loaded
    assert "Draw on the canvas to get a prediction." in [info.value for info in at.info]
    assert {button.key for button in at.get("download_button")} == {"download_model", "download_metrics"}

    at.file_uploader(key="try_upload").set_value(("trouser.png", trouser_png(), "image/png")).run()

    assert not at.exception
    assert not at.error
    headings = [markdown.value for markdown in at.markdown if markdown.value.startswith("### ")]
    assert len(headings) == 1 and headings[0] in CLASS_HEADINGS
    captions = [caption for image in at.tabs[1].image for caption in image.captions]
    assert captions[:2] == ["Your picture", "What the model sees (28 × 28), inverted"]
    top = [text for text in (bar.text for bar in at.tabs[1].get("progress")) if re.search(r": \d+\.\d%$", text)]
    assert len(top) == 3
    assert headings[0] == f"### {top[0].rsplit(': ', 1)[0]}"  # the heading is the most likely class


@pytest.mark.parametrize("name, payload, message", [
    ("notes.png", b"this is a text file, not a picture\n", preprocess.UNREADABLE_MESSAGE),
    ("cut-short.png", trouser_png()[:120], preprocess.DAMAGED_MESSAGE),
    ("empty.png", b"", "The file is empty: it contains no bytes."),
    # Over the app's 5 MB but under Streamlit's upload limit: the app's own message, not the uploader's chip.
    ("huge.png", trouser_png() + b"\x00" * (6 * 1024 * 1024 - len(trouser_png())),
     "The file is too big (6.0 MB); the limit is 5 MB."),
], ids=["text-bytes", "truncated-png", "zero-bytes", "six-megabytes"])
def test_a_bad_upload_gets_a_plain_error_message_and_no_exception(new_session, name, payload, message):
    at = new_session(TRY_IT)
    quick_train(at, "try")

    at.file_uploader(key="try_upload").set_value((name, payload, "image/png")).run()

    assert not at.exception
    assert [error.value for error in at.error] == [f"{common.plain_text(name)}: {message}"]
    assert not [markdown for markdown in at.markdown if markdown.value.startswith("### ")]
    assert "Traceback" not in " ".join(error.value for error in at.error)

    at.file_uploader(key="try_upload").set_value(("trouser.png", trouser_png(), "image/png")).run()
    assert not at.exception and not at.error  # the page recovers with the next picture


def test_an_upload_name_with_markdown_is_shown_as_typed(new_session):
    at = new_session(TRY_IT)
    quick_train(at, "try")
    at.file_uploader(key="try_upload").set_value(("**bold** [link](x).png", b"not a picture", "image/png")).run()
    assert not at.exception
    [error] = [error.value for error in at.error]
    shown = error.split(": ", 1)[0]
    assert not re.search(r"(?<!\\)[*_\[\]()]", shown), shown  # every markup character is escaped
    assert re.sub(r"\\(.)", r"\1", shown) == "__bold__ _link__x_.png"  # unescaped: the (made safe) name


def test_a_coin_flip_answer_is_flagged_as_unsure():
    from views import common

    assert common.is_unsure([(0, 0.513), (6, 0.487)]), "51% against 49%: the model is not sure"
    assert common.is_unsure([(1, 0.45), (3, 0.10)]), "under half"
    assert not common.is_unsure([(0, 0.60), (6, 0.35)])
    assert not common.is_unsure([(1, 0.97), (3, 0.02)])
    assert not common.is_unsure([(1, 0.97)])
