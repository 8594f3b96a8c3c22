"""Small measuring helpers shared by the groups: settings, statistics and progress messages."""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ORIGINAL_ENVIRONMENT = dict(os.environ)
"""The environment before the harness changed anything: what the Streamlit servers it starts get."""

REPOSITORY = Path(__file__).resolve().parent.parent
"""The fmnist-studio checkout that holds ``app.py`` and the ``fmnist`` package."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the command line chose; every group reads only this."""

    quick: bool = False
    app_path: Path = REPOSITORY / "app.py"
    seed: int = 42
    deadline: float = math.inf
    """``time.monotonic()`` by which the whole run should be over; open-ended groups shorten their waits."""
    memory_with_browser: bool = False
    """Both browser groups run: the ``browser`` group takes the ``memory`` measurements on its server."""
    streamlit_options: tuple[tuple[str, str], ...] = ()
    """Extra ``--<option> <value>`` pairs for ``streamlit run`` (none by default: the app's own settings)."""
    ray_address: str = ""
    """``--ray``: the servers the load group starts train on this Ray cluster ("local": a new local
    instance); empty: in the server's own threads."""

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()


@dataclasses.dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far: by the whole machine, the server, our other descendants, and this harness."""

    machine: float
    server: float
    descendants: float
    harness: float
    at: float


def _process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    return parents


def cpu_sample(server_pid: int) -> CpuSample:
    """Where the CPU time goes: the machine (``/proc/stat``), the server, and chromium + its driver.

    "Descendants" are the processes started by this harness other than the server (Playwright's
    driver and chromium's processes); the harness's own time is left out of it.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    counters = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(value) for index, value in enumerate(counters[:8]) if index not in (3, 4)) / ticks  # no idle, iowait
    parents = _parents()
    own = os.getpid()
    descendants = 0.0
    for pid in parents:
        ancestor = parents.get(pid)
        chain = {pid}
        while ancestor and ancestor not in chain and ancestor != own:
            chain.add(ancestor)
            ancestor = parents.get(ancestor)
        if ancestor == own and pid != server_pid and server_pid not in chain:
            try:
                descendants += _process_cpu_seconds(pid)
            except OSError:
                continue
    return CpuSample(machine=busy, server=_process_cpu_seconds(server_pid), descendants=descendants,
                     harness=_process_cpu_seconds(own), at=time.monotonic())


def cpu_shares(before: CpuSample, after: CpuSample, prefix: str) -> dict[str, float | None]:
    """Shares of all CPUs over the interval: server, browser (chromium + driver), harness, the rest.

    "Other" is everything else the machine did meanwhile (other people's jobs on a shared machine).
    """
    capacity = (after.at - before.at) * (os.cpu_count() or 1)
    if capacity <= 0:
        return {}
    server = after.server - before.server
    browser = after.descendants - before.descendants
    harness = after.harness - before.harness
    machine = after.machine - before.machine
    shares = {f"{prefix}_server_cpu_share": server / capacity, f"{prefix}_browser_cpu_share": browser / capacity,
              f"{prefix}_harness_cpu_share": harness / capacity, f"{prefix}_machine_cpu_share": machine / capacity,
              f"{prefix}_other_cpu_share": max(0.0, machine - server - browser - harness) / capacity}
    return {key: rounded(value, 3) for key, value in shares.items()}


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return float(statistics.median(values)) if values else math.nan


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolation percentile (numpy's default method); ``fraction`` in [0, 1]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return float(ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower))


def rounded(value: float | None, digits: int = 4) -> float | None:
    """A number for the JSON: rounded, and None instead of NaN or infinity."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def progress(message: str) -> None:
    """A progress line for people, on stderr (stdout carries only the table and the JSON)."""
    print(f"[bench] {message}", file=sys.__stderr__, flush=True)
