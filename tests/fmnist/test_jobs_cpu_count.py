"""Tests for fmnist.jobs.usable_cpu_count, the default job cap: affinity and cgroup quotas, on fake files.

Kept apart from test_jobs.py, whose jobs train for real: these tests only read files they write.
"""

import pathlib

import pytest

from fmnist import jobs


@pytest.fixture
def four_cpus(monkeypatch):
    """The process may run on CPUs 0-3 of a 64-CPU machine."""
    monkeypatch.setattr(jobs.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 64)


def fake_cgroups(tmp_path: pathlib.Path, membership: str, files: dict[str, str]) -> tuple[pathlib.Path, pathlib.Path]:
    """A fake cgroup mount and /proc/self/cgroup: ``files`` maps paths under the mount to contents."""
    root = tmp_path / "sys-fs-cgroup"
    root.mkdir()
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    process_cgroups = tmp_path / "proc-self-cgroup"
    process_cgroups.write_text(membership)
    return root, process_cgroups


@pytest.mark.parametrize(("membership", "files", "expected"), [
    pytest.param("0::/\n", {"cpu.max": "200000 100000\n"}, 2, id="v2-two-cpus"),
    pytest.param("0::/\n", {"cpu.max": "150000 100000\n"}, 2, id="v2-fraction-rounds-up"),
    pytest.param("0::/\n", {"cpu.max": "50000 100000\n"}, 1, id="v2-half-a-cpu-is-one"),
    pytest.param("0::/\n", {"cpu.max": "max 100000\n"}, 4, id="v2-no-quota"),
    pytest.param("0::/\n", {"cpu.max": "1600000 100000\n"}, 4, id="v2-quota-above-affinity"),
    pytest.param("0::/kubepods/pod7/box\n", {"kubepods/pod7/cpu.max": "100000 100000\n",
                                             "kubepods/pod7/box/cpu.max": "max 100000\n"}, 1,
                 id="v2-an-ancestor-limits"),
    pytest.param("0::/kubepods/pod7/box\n", {"kubepods/pod7/cpu.max": "300000 100000\n",
                                             "kubepods/pod7/box/cpu.max": "200000 100000\n"}, 2,
                 id="v2-the-smallest-wins"),
    pytest.param("4:memory:/x\n2:cpu,cpuacct:/\n0::/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "300000\n",
                                                        "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 3,
                 id="v1-cpu-cpuacct"),
    pytest.param("1:cpu:/docker/abc\n0::/\n", {"cpu/docker/abc/cpu.cfs_quota_us": "100000\n",
                                               "cpu/docker/abc/cpu.cfs_period_us": "100000\n"}, 1,
                 id="v1-cpu-nested"),
    pytest.param("1:cpu:/\n0::/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4,
                 id="v1-no-quota"),
    pytest.param("0::/\n", {}, 4, id="no-files"),
    pytest.param("0::/\n", {"cpu.max": "garbage\n"}, 4, id="garbled-file"),
    pytest.param("0::/\n", {"cpu.max": "100000 0\n"}, 4, id="zero-period"),
])
def test_usable_cpu_count_caps_the_affinity_by_the_cgroup_quota(tmp_path, four_cpus, membership, files, expected):
    root, process_cgroups = fake_cgroups(tmp_path, membership, files)
    assert jobs.usable_cpu_count(root, process_cgroups) == expected


def test_usable_cpu_count_without_any_cgroup_files_is_the_affinity(tmp_path, four_cpus):
    assert jobs.usable_cpu_count(tmp_path / "no-mount", tmp_path / "no-proc-file") == 4


def test_usable_cpu_count_counts_the_affinity_not_the_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs.os, "sched_getaffinity", lambda pid: {5})
    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 64)
    assert jobs.usable_cpu_count(tmp_path / "no-mount", tmp_path / "no-proc-file") == 1


def test_the_default_job_cap_is_the_usable_cpu_count(monkeypatch):
    monkeypatch.delenv("FMNIST_MAX_CONCURRENT_TRAINING", raising=False)
    monkeypatch.setattr(jobs.os, "sched_getaffinity", lambda pid: {3})
    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 64)
    assert jobs.JobManager().max_concurrent == 1, "one usable CPU of 64: one job at a time"
    monkeypatch.setenv("FMNIST_MAX_CONCURRENT_TRAINING", "3")
    assert jobs.JobManager().max_concurrent == 3, "the environment variable still decides when set"
