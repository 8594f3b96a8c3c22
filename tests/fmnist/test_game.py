"""Tests for fmnist.game: drawing unseen items, scoring both players, and the capped classroom tally."""

import threading

import numpy as np
import pytest

from fmnist import game


def labels_and_predictions(count: int = 50):
    true_labels = np.arange(count) % 10
    model_labels = true_labels.copy()
    model_labels[::3] = (model_labels[::3] + 1) % 10  # the model is wrong on every third item
    return true_labels, model_labels


def test_a_new_game_has_ten_distinct_rounds_that_carry_truth_and_model_answer():
    true_labels, model_labels = labels_and_predictions()

    played = game.HumanVsModelGame.new(true_labels, model_labels, seed=1)

    indices = [r.item_index for r in played.rounds]
    assert len(indices) == game.ROUNDS_PER_GAME == len(set(indices))
    for game_round in played.rounds:
        assert game_round.true_label == true_labels[game_round.item_index]
        assert game_round.model_label == model_labels[game_round.item_index]
        assert not game_round.answered


def test_the_same_visitor_sees_no_item_twice_until_every_item_was_shown():
    true_labels, model_labels = labels_and_predictions(30)
    seen: set[int] = set()

    first = game.HumanVsModelGame.new(true_labels, model_labels, seen=seen, seed=1)
    second = game.HumanVsModelGame.new(true_labels, model_labels, seen=seen, seed=1)
    third = game.HumanVsModelGame.new(true_labels, model_labels, seen=seen, seed=1)

    shown = [r.item_index for played in (first, second, third) for r in played.rounds]
    assert sorted(shown) == list(range(30))  # three games of ten cover the 30 items exactly once
    fourth = game.HumanVsModelGame.new(true_labels, model_labels, seen=seen, seed=2)
    assert len({r.item_index for r in fourth.rounds}) == 10  # then it starts over, still distinct


def test_scores_count_both_players_over_the_rounds_played_and_list_who_beat_whom():
    true_labels, model_labels = labels_and_predictions()
    played = game.HumanVsModelGame.new(true_labels, model_labels, seed=3)
    expected_human = expected_model = 0
    for position in range(game.ROUNDS_PER_GAME):
        current = played.current
        assert played.round_number == position + 1
        # the visitor is right on even rounds, wrong (off by 2) on odd ones
        guess = current.true_label if position % 2 == 0 else (current.true_label + 2) % 10
        revealed = played.guess(guess)
        expected_human += revealed.human_right
        expected_model += revealed.model_right
        assert (played.human_score, played.model_score) == (expected_human, expected_model)

    assert played.finished and played.current is None
    assert played.human_score == 5
    assert played.model_score == sum(model_labels[r.item_index] == true_labels[r.item_index] for r in played.rounds)
    assert all(r.human_right and not r.model_right for r in played.human_only_right())
    assert all(r.model_right and not r.human_right for r in played.model_only_right())
    both_or_neither = [r for r in played.rounds if r.human_right == r.model_right]
    assert len(played.human_only_right()) + len(played.model_only_right()) + len(both_or_neither) == 10


def test_a_partial_game_scores_the_model_only_on_the_rounds_the_visitor_played():
    true_labels = np.zeros(20, dtype=int)
    model_labels = np.zeros(20, dtype=int)  # the model is always right
    played = game.HumanVsModelGame.new(true_labels, model_labels, seed=0)

    played.guess(0)
    played.guess(1)

    assert (played.human_score, played.model_score) == (1, 2)


@pytest.mark.parametrize("bad_guess", [-1, 10, 2.0, True, "3"])
def test_a_guess_that_is_not_a_class_is_refused(bad_guess):
    played = game.HumanVsModelGame.new(*labels_and_predictions(), seed=0)
    with pytest.raises(game.GameError, match="class number from 0 to 9"):
        played.guess(bad_guess)


def test_no_guess_after_the_last_round():
    played = game.HumanVsModelGame.new(*labels_and_predictions(), rounds=2, seed=0)
    played.guess(0)
    played.guess(0)
    with pytest.raises(game.GameError, match="over"):
        played.guess(0)


def test_predictions_must_match_the_items():
    with pytest.raises(game.GameError, match="one model prediction per item"):
        game.HumanVsModelGame.new(np.zeros(20), np.zeros(19))
    with pytest.raises(game.GameError, match="between 1 and 5 rounds"):
        game.HumanVsModelGame.new(np.zeros(5), np.zeros(5), rounds=10)


def test_the_tally_counts_right_answers_of_both_and_forgets_the_oldest_beyond_its_cap():
    tally = game.ClassroomTally(capacity=3)
    assert tally.snapshot().human_accuracy is None
    rounds = [game.GameRound(0, 1, model_label=1, human_label=1),   # both right
              game.GameRound(1, 1, model_label=2, human_label=1),   # human only
              game.GameRound(2, 1, model_label=1, human_label=0),   # model only
              game.GameRound(3, 1, model_label=0, human_label=0)]   # neither
    for game_round in rounds[:3]:
        tally.record(game_round)
    assert tally.snapshot() == game.TallySnapshot(guesses=3, human_correct=2, model_correct=2)

    tally.record(rounds[3])  # the cap drops the first (both right) guess

    snapshot = tally.snapshot()
    assert snapshot == game.TallySnapshot(guesses=3, human_correct=1, model_correct=1)
    assert snapshot.human_accuracy == pytest.approx(1 / 3)


def test_the_tally_refuses_unanswered_rounds_and_a_zero_cap():
    with pytest.raises(game.GameError):
        game.ClassroomTally().record(game.GameRound(0, 1, 1))
    with pytest.raises(ValueError, match="at least one"):
        game.ClassroomTally(capacity=0)


def test_the_tally_is_safe_to_record_from_many_threads():
    tally = game.ClassroomTally(capacity=100_000)
    right = game.GameRound(0, 1, model_label=1, human_label=1)

    def record_many():
        for _ in range(2000):
            tally.record(right)

    threads = [threading.Thread(target=record_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tally.snapshot() == game.TallySnapshot(16000, 16000, 16000)
