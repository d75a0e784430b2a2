"""The benchmarks' comparison registry: ``COMPARISONS = {operation: {library: make_callable}}``.

It lives in :mod:`fastloss.bench.registry` so that ``fastloss bench`` works from an
installed package; this module re-exports it for the benchmarks and the tests
(``sys.path``-insert this directory, or import ``fastloss.bench.registry``).

    from comparisons import COMPARISONS, make_data, check
    data = make_data("sparse_ce", (256, 1000), "float32")
    fn = COMPARISONS["sparse_ce"]["torch"](data, n_threads=1)   # setup done here
    fn()                                                        # only the computation
"""

from fastloss.bench.registry import (  # noqa: F401
    ALL_CORES,
    COMPARISONS,
    DTYPES,
    FASTLOSS_LIBS,
    FLAT_OPS,
    FLAT_SHAPES,
    LIBRARIES,
    OPS,
    PROB_OPS,
    REFERENCE_LIB,
    ROW_OPS,
    ROW_SHAPES,
    Case,
    ThreadMismatch,
    Unsupported,
    all_cases,
    cases,
    check,
    comparison,
    expected,
    input_bytes,
    libraries,
    library_available,
    make,
    make_data,
    mismatch,
    n_elements,
    pred,
    thread_counts,
    to_numpy,
    tolerance,
)
