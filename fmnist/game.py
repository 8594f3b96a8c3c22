"""Human vs model: ten rounds of "which class is this?", and a server-wide classroom tally.

A game is plain data and arithmetic: it takes the model's predictions for the test set up front
(one prediction per item, computed once per model by the page), draws unseen items, and scores
the visitor's guesses against the truth and the model. The tally is the only shared object: an
anonymous, capped, in-memory count of this server's guesses, reset when the server restarts.
Nothing here knows about Streamlit or TensorFlow.
"""

from __future__ import annotations

import collections
import dataclasses
import threading

import numpy as np

from fmnist.data import NUM_CLASSES

ROUNDS_PER_GAME = 10
HUMAN_REFERENCE_ACCURACY = 0.835
"""Human accuracy on Fashion-MNIST, as published with the dataset."""


class GameError(ValueError):
    """A guess or a game that does not make sense (no items left, a guess after the end, ...)."""


@dataclasses.dataclass(frozen=True)
class GameRound:
    """One item of a game; ``human_label`` is None until the visitor has guessed."""

    item_index: int
    true_label: int
    model_label: int
    human_label: int | None = None

    @property
    def answered(self) -> bool:
        return self.human_label is not None

    @property
    def human_right(self) -> bool:
        return self.human_label == self.true_label

    @property
    def model_right(self) -> bool:
        return self.model_label == self.true_label


@dataclasses.dataclass
class HumanVsModelGame:
    """Ten rounds on test items the visitor has not seen in this game or an earlier one."""

    rounds: list[GameRound]

    @classmethod
    def new(cls, true_labels: np.ndarray, model_labels: np.ndarray, seen: set[int] | None = None,
            rounds: int = ROUNDS_PER_GAME, seed: int | None = None) -> HumanVsModelGame:
        """Draw ``rounds`` distinct items, none of them in ``seen`` while unseen items remain.

        ``seen`` (the visitor's items so far) is updated in place, so the same visitor meets an
        item again only after every item has been shown once.
        """
        true_labels = np.asarray(true_labels)
        model_labels = np.asarray(model_labels)
        if true_labels.shape != model_labels.shape or true_labels.ndim != 1:
            raise GameError(f"Need one model prediction per item, got {model_labels.shape} for {true_labels.shape}.")
        if not 1 <= rounds <= len(true_labels):
            raise GameError(f"A game needs between 1 and {len(true_labels)} rounds, not {rounds}.")
        seen = set() if seen is None else seen
        generator = np.random.default_rng(seed)
        unseen = np.setdiff1d(np.arange(len(true_labels)), np.fromiter(seen, dtype=np.int64, count=len(seen)))
        if len(unseen) < rounds:  # every item has been shown: start over, still distinct within a game
            seen.clear()
            unseen = np.arange(len(true_labels))
        chosen = generator.choice(unseen, size=rounds, replace=False)
        seen.update(int(index) for index in chosen)
        return cls([GameRound(int(index), int(true_labels[index]), int(model_labels[index])) for index in chosen])

    @property
    def current(self) -> GameRound | None:
        """The first round without a guess; None when the game is over."""
        return next((game_round for game_round in self.rounds if not game_round.answered), None)

    @property
    def round_number(self) -> int:
        """1-based number of the round being played (or ``len(rounds)`` at the end)."""
        return min(len(self.answered), len(self.rounds) - 1) + 1

    @property
    def finished(self) -> bool:
        return self.current is None

    @property
    def answered(self) -> list[GameRound]:
        return [game_round for game_round in self.rounds if game_round.answered]

    def guess(self, label: int) -> GameRound:
        """Record the visitor's class for the current item and return the revealed round."""
        if not isinstance(label, (int, np.integer)) or isinstance(label, bool) or not 0 <= label < NUM_CLASSES:
            raise GameError(f"A guess is a class number from 0 to {NUM_CLASSES - 1}, not {label!r}.")
        current = self.current
        if current is None:
            raise GameError("The game is over: start a new one.")
        position = self.rounds.index(current)
        revealed = dataclasses.replace(current, human_label=int(label))
        self.rounds[position] = revealed
        return revealed

    @property
    def human_score(self) -> int:
        return sum(game_round.human_right for game_round in self.answered)

    @property
    def model_score(self) -> int:
        """The model's score over the rounds the visitor has played (so both count the same items)."""
        return sum(game_round.model_right for game_round in self.answered)

    def human_only_right(self) -> list[GameRound]:
        """Items the visitor got right and the model got wrong."""
        return [r for r in self.answered if r.human_right and not r.model_right]

    def model_only_right(self) -> list[GameRound]:
        """Items the model got right and the visitor got wrong."""
        return [r for r in self.answered if r.model_right and not r.human_right]


@dataclasses.dataclass(frozen=True)
class TallySnapshot:
    guesses: int
    human_correct: int
    model_correct: int

    @property
    def human_accuracy(self) -> float | None:
        return self.human_correct / self.guesses if self.guesses else None

    @property
    def model_accuracy(self) -> float | None:
        return self.model_correct / self.guesses if self.guesses else None


class ClassroomTally:
    """This server's guesses: anonymous (only right/wrong is kept), capped to the most recent ones.

    Thread-safe: every visitor's script thread records into the same tally.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("The tally must keep at least one guess.")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._guesses: collections.deque[tuple[bool, bool]] = collections.deque(maxlen=capacity)
        self._human_correct = 0
        self._model_correct = 0

    def record(self, game_round: GameRound) -> None:
        """Count one revealed round; beyond the cap the oldest guess is forgotten."""
        if not game_round.answered:
            raise GameError("Only answered rounds can be counted.")
        entry = (game_round.human_right, game_round.model_right)
        with self._lock:
            if len(self._guesses) == self.capacity:
                old_human, old_model = self._guesses[0]
                self._human_correct -= old_human
                self._model_correct -= old_model
            self._guesses.append(entry)
            self._human_correct += entry[0]
            self._model_correct += entry[1]

    def snapshot(self) -> TallySnapshot:
        with self._lock:
            return TallySnapshot(len(self._guesses), self._human_correct, self._model_correct)
