"""Benchmarks for fmnist-studio: ``python -m bench [--quick] [--only GROUPS] [--json-out PATH]``.

One module per group of measurements:

- :mod:`bench.engine`: our training engine against the textbook's plain ``model.fit``;
- :mod:`bench.data_speed`: dataset load from the cache, and one upload's prepare + predict;
- :mod:`bench.browser`: cold start of the real app in headless chromium, and Start to first epoch;
- :mod:`bench.memory`: the server's resident memory, and its growth per idle session;
- :mod:`bench.load`: ten visitors training at once, and an eleventh arriving mid-load.

Every comparison runs side by side in one process, on the same data and seed, so ratios hold
on a noisy machine. :mod:`bench.report` turns the numbers into a table, targets and JSON.
"""
