"""The visitor's language (한국어 or English): gettext catalogues, the sidebar choice, locale formatting.

English sentences are the message ids (``_("Train a network")``); ``locales/messages.pot`` holds
them all (extracted with ``pybabel extract``) and ``locales/ko/LC_MESSAGES/messages.po`` their
Korean translations. The ``.po`` files are compiled in memory once per process with Babel, so
the repository holds no generated ``.mo`` files. The language comes from ``?lang=`` in the URL
(so a shared link opens in the same language), else from the browser (``st.context.locale``),
else English; the visitor's choice in the sidebar is written back to the URL.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

import streamlit as st
from babel import Locale, numbers
from babel.messages import mofile, pofile

LANGUAGES = {"en": "English", "ko": "한국어"}
DEFAULT_LANGUAGE = "en"
LOCALE_DIRECTORY = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
SESSION_KEY = "language"


def catalogue_path(language: str) -> Path:
    return LOCALE_DIRECTORY / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@st.cache_resource(show_spinner=False)
def translations() -> dict[str, gettext.NullTranslations]:
    """Every language's translations, compiled from its ``.po`` file once per process."""
    loaded: dict[str, gettext.NullTranslations] = {DEFAULT_LANGUAGE: gettext.NullTranslations()}
    for language in LANGUAGES:
        path = catalogue_path(language)
        if language == DEFAULT_LANGUAGE or not path.is_file():
            continue
        with path.open("rb") as stream:
            catalogue = pofile.read_po(stream, locale=language, domain=DOMAIN)
        buffer = io.BytesIO()
        mofile.write_mo(buffer, catalogue, use_fuzzy=False)
        buffer.seek(0)
        loaded[language] = gettext.GNUTranslations(buffer)
    return loaded


def _language_of(tag: object) -> str | None:
    """"ko", "ko-KR", "ko_KR" → "ko"; anything we do not offer → None."""
    if not isinstance(tag, str) or not tag:
        return None
    language = tag.replace("_", "-").split("-")[0].lower()
    return language if language in LANGUAGES else None


def current_language() -> str:
    """The visitor's language: ``?lang=`` (the sidebar choice writes it), else the session's, else the
    browser's, else English."""
    language = (_language_of(st.query_params.get("lang")) or _language_of(st.session_state.get(SESSION_KEY))
                or _language_of(st.context.locale) or DEFAULT_LANGUAGE)
    st.session_state[SESSION_KEY] = language
    return language


def _(message: str) -> str:
    """``message`` in the visitor's language (unchanged where no translation exists)."""
    return translations().get(current_language(), translations()[DEFAULT_LANGUAGE]).gettext(message)


def translated(message: str, language: str) -> str:
    """``message`` in ``language``, whatever the visitor's language is."""
    return translations().get(language, translations()[DEFAULT_LANGUAGE]).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural form for ``count``, in the visitor's language (Korean has one form)."""
    return translations().get(current_language(), translations()[DEFAULT_LANGUAGE]).ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Marks a message for extraction without translating it (for module-level constants)."""
    return message


CLASS_NAME_MESSAGES = (N_("T-shirt/top"), N_("Trouser"), N_("Pullover"), N_("Dress"), N_("Coat"),
                       N_("Sandal"), N_("Shirt"), N_("Sneaker"), N_("Bag"), N_("Ankle boot"))
"""Fashion-MNIST's class names (as in ``fmnist.data.CLASS_NAMES``), marked for the catalogues."""


def class_name(label: int) -> str:
    """A class's name in the visitor's language."""
    return _(CLASS_NAME_MESSAGES[int(label)])


def class_label(label: int, korean: bool = True) -> str:
    """A class's name for people: in English with the Korean name beside it ("Trouser (바지)"), for the
    course's bilingual classrooms; in Korean alone."""
    if current_language() != DEFAULT_LANGUAGE:
        return class_name(label)
    name = CLASS_NAME_MESSAGES[int(label)]
    return f"{name} ({translated(name, 'ko')})" if korean else name


def babel_locale() -> Locale:
    return Locale.parse({"en": "en_US", "ko": "ko_KR"}[current_language()])


def format_number(value: float, decimals: int = 0) -> str:
    """A number with the visitor's digit grouping and decimal sign."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return numbers.format_decimal(value, format=pattern, locale=babel_locale())


def format_percent(fraction: float, decimals: int = 1) -> str:
    """0.8532 → "85.3%" in the visitor's locale."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + "%"
    return numbers.format_percent(fraction, format=pattern, locale=babel_locale())


def _remember_choice() -> None:
    chosen = st.session_state.get("language_choice")
    if chosen in LANGUAGES:
        st.session_state[SESSION_KEY] = chosen
        st.query_params["lang"] = chosen


def language_selector() -> None:
    """The sidebar's language choice; it is kept in the URL so that a shared link keeps it."""
    language = current_language()
    st.session_state["language_choice"] = language  # follows ?lang= too, not only clicks
    st.segmented_control("Language / 언어", list(LANGUAGES), format_func=LANGUAGES.get, key="language_choice",
                         selection_mode="single", on_change=_remember_choice)
    if st.query_params.get("lang") != language:
        st.query_params["lang"] = language
    if language == "ko":  # Korean breaks lines between words, not inside them ("둘러보기", not "둘러보\n기")
        st.html("<style>h1, h2, h3, [data-testid='stMarkdownContainer'] {word-break: keep-all; "
                "overflow-wrap: anywhere}</style>")
