"""pytest-benchmark suite over the shared comparison registry (:mod:`fastloss.bench.registry`).

Every (operation, shape, dtype, library, thread count) is one benchmark, grouped as
``operation|shape|dtype|t<threads>`` (``test_bench_throughput.py``). Large shapes
are marked ``slow``; in the default test run (``--benchmark-disable -m 'not slow'``)
each remaining benchmark runs once as a smoke test, its result checked against the
reference first. Timed runs:

    pytest benchmarks -m slow --benchmark-enable            # the large cases
    pytest benchmarks --benchmark-enable -k "sparse_ce and 1e6x10" --benchmark-json out.json

TensorFlow fixes its thread pool once per process (to ``FASTLOSS_BENCH_TF_THREADS``,
default all cores), so its other thread count is skipped here; ``fastloss bench``
runs each thread count in its own process. The helpers live in the test modules,
not here: ``tests/conftest.py`` is also a module named ``conftest``.
"""
