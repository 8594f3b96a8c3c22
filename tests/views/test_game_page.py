"""The Human vs model page through app.py: the way to a model, ten rounds, scores, the tally."""

from apptest_support import quick_train, session_runs

from fmnist.data import CLASS_NAMES

GAME = "views/game.py"


def current_item(at):
    """The round being played: (test index, true label, model label)."""
    _, played = at.session_state["human_vs_model_game"]
    return played.current


def test_without_a_model_it_offers_the_quick_train(new_session):
    at = new_session(GAME)

    assert not at.exception
    assert [title.value for title in at.title] == ["Human vs model"]
    assert any(info.value.startswith("There is no trained model yet to play.") for info in at.info)
    assert not at.button(key="play_quick_train").disabled


def test_ten_rounds_score_both_players_and_end_with_who_beat_whom(new_session, tiny_idx_dataset):
    at = new_session(GAME)
    quick_train(at, "play")
    assert not at.exception
    human_right = model_right = 0
    shown = []
    for round_number in range(1, 11):
        assert any(f"Round {round_number} of 10" in text.value for text in at.markdown)
        item = current_item(at)
        shown.append(item.item_index)
        assert item.true_label == tiny_idx_dataset.y_test[item.item_index]
        guess = item.true_label if round_number <= 7 else (item.true_label + 1) % 10  # right 7 times
        at.button(key=f"game_guess_{guess}").click().run()
        assert not at.exception
        human_right += guess == item.true_label
        model_right += item.model_label == item.true_label
        assert any(f"It is **{CLASS_NAMES[item.true_label]}" in text.value for text in at.markdown)
        metrics = {metric.label: metric.value for metric in at.metric}
        assert metrics["You"] == f"{human_right} / {round_number}"
        assert metrics["The model"] == f"{model_right} / {round_number}"
        at.button(key="game_next").click().run()

    assert len(set(shown)) == 10
    assert human_right == 7
    assert any(header.value.endswith(f"You 7 – model {model_right}") for header in at.subheader)
    assert any("This server's humans so far: 70.0% right over 10 guesses" in caption.value
               for caption in at.caption)
    # the model's answers are its real predictions on those items
    record = session_runs(at)[-1]
    assert list(record.derived["test_predictions"][shown]) == [r.model_label for r in
                                                               at.session_state["human_vs_model_game"][1].rounds]

    at.button(key="game_again").click().run()
    assert not at.exception
    second = {r.item_index for r in at.session_state["human_vs_model_game"][1].rounds}
    assert not second & set(shown)  # the same visitor does not meet the same items again


def test_the_tally_is_shared_by_visitors_but_games_are_not(new_session):
    first = new_session(GAME)
    quick_train(first, "play")
    item = current_item(first)
    first.button(key=f"game_guess_{item.true_label}").click().run()

    second = new_session(GAME)
    quick_train(second, "play")

    assert "human_vs_model_game" in second.session_state
    assert len(second.session_state["human_vs_model_game"][1].answered) == 0
    assert any("over 1 guess;" in caption.value for caption in second.caption)


def test_the_tally_keeps_only_the_most_recent_guesses(new_session, monkeypatch):
    monkeypatch.setenv("FMNIST_TALLY_CAPACITY", "3")
    at = new_session(GAME)
    quick_train(at, "play")
    for _ in range(5):  # right, right, right, wrong, wrong: the cap keeps the last three
        item = current_item(at)
        right = at.session_state["human_vs_model_game"][1].round_number <= 3
        at.button(key=f"game_guess_{item.true_label if right else (item.true_label + 1) % 10}").click().run()
        at.button(key="game_next").click().run()
    assert any("This server's humans so far: 33.3% right over 3 guesses" in caption.value for caption in at.caption)
