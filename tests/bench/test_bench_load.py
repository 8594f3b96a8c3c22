"""The load group's bookkeeping: --ray, the time to start a job, stalled pages, the side-by-side table.

The page is a stand-in that answers the two scripts the group runs on a page (its text, its
connection state); everything else is the group's own code."""

from bench import load
from bench.__main__ import parse_arguments


class ScriptedPage:
    def __init__(self) -> None:
        self.text = ""

    def evaluate(self, script: str) -> str:
        return self.text if "body.textContent" in script else "CONNECTED/notRunning; sidebar says: Run 1: " + self.text


def test_ray_is_an_option_of_the_bench_with_local_as_its_default():
    assert parse_arguments(["--only", "load", "--ray"]).ray == "local"
    assert parse_arguments(["--only", "load", "--ray", "10.0.0.5:6379"]).ray == "10.0.0.5:6379"
    assert parse_arguments(["--only", "load"]).ray == ""


def test_a_running_page_that_keeps_its_text_is_a_stall_and_a_waiting_one_is_not():
    page = ScriptedPage()
    visitor = load.Visitor(page=page, pressed_at=0.0)
    page.text = "Waiting for a worker, place 2 among this server's runs: ..."
    for now in (1.0, 20.0):
        assert not load.read_state(visitor, now)
    assert visitor.queued_positions == {2} and visitor.started_at is None and not visitor.stall
    page.text = "Training epoch 1/2 (40% of it), about 3 s left. Epochs done: 0/2."
    assert load.read_state(visitor, 21.0)
    assert visitor.started_at == 21.0
    page.text = "Training epoch 1/2 (60% of it), about 2 s left. Epochs done: 0/2."
    assert load.read_state(visitor, 22.0)
    assert load.read_state(visitor, 22.0 + load.STALL_SECONDS + 1)  # the same line, 1 s over the limit
    assert visitor.longest_silence == load.STALL_SECONDS + 1
    line = "Training epoch 1/2 (60% of it), about 2 s left. Epochs done: 0/2"
    assert visitor.stall == f"CONNECTED/notRunning: {line} | sidebar: {line}"
    page.text = "Finishing. Epochs done: 2/2."  # a phase whose line stays the same: no stall
    assert load.read_state(visitor, 41.0) and load.read_state(visitor, 41.0 + 2 * load.STALL_SECONDS)
    assert visitor.longest_silence == load.STALL_SECONDS + 1
    page.text = "Training finished. Epochs done: 2/2."
    assert not load.read_state(visitor, 90.0)
    assert visitor.finished_at == 90.0


def test_the_comparison_shows_every_run_and_the_median_per_backend():
    runs = {"threads": [{"eleventh_visitor_first_page_s": 2.0, "load_sessions_completed": 10},
                        {"eleventh_visitor_first_page_s": 4.0, "load_sessions_completed": 10}],
            "ray": [{"eleventh_visitor_first_page_s": 1.5, "load_stall_details": ["CONNECTED/notRunning: x"]}]}
    table = load.format_comparison(runs)
    first_page_row = next(line for line in table.splitlines() if line.startswith("11th visitor"))
    assert "2 / 4  (median 3)" in first_page_row and "1.5" in first_page_row
    assert "ray run 1: stalled page: CONNECTED/notRunning: x" in table
