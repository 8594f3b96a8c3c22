"""Human vs model: guess ten test items, then see what the model said and who was right."""

from __future__ import annotations

import os

import numpy as np
import streamlit as st

from fmnist import evaluation, game
from fmnist.data import NUM_CLASSES
from views import common, runs, server
from views.language import _, class_name, format_percent, ngettext

GAME_KEY = "human_vs_model_game"
SEEN_KEY = "human_vs_model_seen"
REVEAL_KEY = "human_vs_model_reveal"


@st.cache_resource(show_spinner=False)
def classroom_tally() -> game.ClassroomTally:
    """Every visitor's guesses on this server: anonymous, capped (the most recent
    ``FMNIST_TALLY_CAPACITY`` guesses, default 10,000), gone when the server restarts."""
    return game.ClassroomTally(int(os.environ.get("FMNIST_TALLY_CAPACITY") or 10_000))


def model_test_predictions(record: runs.RunRecord, dataset) -> np.ndarray:
    """The model's class for every test item, computed once per run (Evaluate's report if it has one)."""
    if "test_predictions" not in record.derived:
        if "test" in record.derived:
            record.derived["test_predictions"] = record.derived["test"].predictions
        else:
            probabilities = evaluation.predict_probabilities(record.job.result.model, dataset.x_test)
            record.derived["test_predictions"] = probabilities.argmax(axis=1)
    return record.derived["test_predictions"]


def start_game(record: runs.RunRecord, dataset) -> game.HumanVsModelGame:
    played = game.HumanVsModelGame.new(dataset.y_test, model_test_predictions(record, dataset),
                                       seen=st.session_state.setdefault(SEEN_KEY, set()))
    st.session_state[GAME_KEY] = (record.run_id, played)
    st.session_state[REVEAL_KEY] = False
    return played


def render_scores(played: game.HumanVsModelGame) -> None:
    played_rounds = len(played.answered)
    columns = st.columns(3)
    columns[0].metric(_("You"), f"{played.human_score} / {played_rounds}")
    columns[1].metric(_("The model"), f"{played.model_score} / {played_rounds}")
    columns[2].metric(_("People in general"), format_percent(game.HUMAN_REFERENCE_ACCURACY),
                      help=_("Human accuracy on Fashion-MNIST, measured when the dataset was published."))
    tally = classroom_tally().snapshot()
    if tally.guesses:
        st.caption(ngettext("This server's humans so far: {human} right over {count} guess; the models on the same "
                            "items: {model}.",
                            "This server's humans so far: {human} right over {count} guesses; the models on the same "
                            "items: {model}.", tally.guesses).format(
            human=format_percent(tally.human_accuracy), count=f"{tally.guesses:,}",
            model=format_percent(tally.model_accuracy)))


def render_guess_buttons(played: game.HumanVsModelGame, images: np.ndarray) -> None:
    current = played.current
    st.markdown("**" + _("Round {number} of {total}: what is this?").format(number=played.round_number,
                                                                           total=len(played.rounds)) + "**")
    image_column, buttons_column = st.columns([1, 2])
    image_column.image(common.upscale(images[current.item_index], 8), width=224)
    with buttons_column:
        rows = [st.columns(2) for _ in range(NUM_CLASSES // 2)]
        for label in range(NUM_CLASSES):
            if rows[label // 2][label % 2].button(common.class_label(label), key=f"game_guess_{label}",
                                                  width="stretch"):
                revealed = played.guess(label)
                classroom_tally().record(revealed)
                st.session_state[REVEAL_KEY] = True
                st.rerun()


def render_reveal(played: game.HumanVsModelGame, images: np.ndarray) -> None:
    last = played.answered[-1]
    image_column, text_column = st.columns([1, 2])
    image_column.image(common.upscale(images[last.item_index], 8), width=224)
    with text_column:
        st.markdown(_("It is **{item}**.").format(item=common.class_label(last.true_label)))
        you = _("right") if last.human_right else _("wrong")
        model = _("right") if last.model_right else _("wrong")
        st.markdown(_("You said {item}: {verdict}.").format(
            item=class_name(last.human_label), verdict=f":{'green' if last.human_right else 'red'}[{you}]"))
        st.markdown(_("The model said {item}: {verdict}.").format(
            item=class_name(last.model_label), verdict=f":{'green' if last.model_right else 'red'}[{model}]"))
        label = _("See the result") if played.finished else _("Next item")
        if st.button(label, type="primary", key="game_next", icon=":material/arrow_forward:"):
            st.session_state[REVEAL_KEY] = False
            st.rerun()


def render_summary(played: game.HumanVsModelGame, images: np.ndarray) -> None:
    human, model = played.human_score, played.model_score
    verdict = _("You beat the model!") if human > model else _("The model wins this time.") if model > human \
        else _("A draw.")
    st.subheader(verdict + " " + _("You {human} – model {model}").format(human=human, model=model))
    for title, rounds in ((_("You got these right, the model did not"), played.human_only_right()),
                          (_("The model got these right, you did not"), played.model_only_right())):
        st.markdown(f"**{title}** ({len(rounds)})")
        if rounds:
            st.image([common.upscale(images[r.item_index], 3) for r in rounds],
                     caption=[_("{item} (you: {human}, model: {model})").format(
                         item=class_name(r.true_label), human=class_name(r.human_label),
                         model=class_name(r.model_label)) for r in rounds], width=96)
        else:
            st.caption(_("None."))
    if st.button(_("Play again"), type="primary", key="game_again", icon=":material/replay:"):
        st.session_state.pop(GAME_KEY, None)
        st.rerun()


def render() -> None:
    st.title(_("Human vs model"))
    st.caption(_("Ten test items the model never trained on. Pick the class; then see what the model said. "
                 "People get about 83.5% of Fashion-MNIST right: can you beat your model?"))
    dataset = server.load_dataset_or_stop()
    record = runs.require_trained_model("play")
    if record is None:
        return
    server.wait_for_tensorflow()
    stored = st.session_state.get(GAME_KEY)
    played = start_game(record, dataset) if stored is None or stored[0] != record.run_id else stored[1]
    render_scores(played)
    if st.session_state.get(REVEAL_KEY) and played.answered:
        render_reveal(played, dataset.x_test)
    elif played.finished:
        render_summary(played, dataset.x_test)
    else:
        render_guess_buttons(played, dataset.x_test)


render()
