"""The benchmark comparisons: one registry for the benchmarks, the tests and ``fastloss bench``.

``COMPARISONS = {operation: {library: make_callable}}`` (numbagg's pattern); every
operation is an :class:`Op` row naming its loss (a :data:`fastloss.LOSSES` row, or
``logsumexp``) and mode, ``OP_BY_KEY[(loss, mode)]`` its id.
``make_callable(data, n_threads, reduction="mean")`` does the setup (tensor
conversion, thread count, ``tf.function`` wrapping) and returns a callable with no
arguments that computes the operation; nothing but the computation is left inside
it. The first call may compile (Numba JIT, TensorFlow tracing): callers warm up
once and never time it. Each maker carries two attributes:

* ``same_as``: the ``fastloss`` keyword arguments that reproduce the library's
  semantics (its clipping), used to check its result before timing;
* ``per_element``: whether ``reduction="none"`` is supported (scikit-learn's
  ``log_loss`` only gives the mean).

Libraries: ``fastloss-<backend>`` for every fastloss backend (unavailable ones say
why), ``numpy`` (the stable formulas as people write them), ``scipy``
(``logsumexp`` / ``log_expit`` / ``xlogy``), ``sklearn`` (``log_loss``), ``torch``
and ``tensorflow`` (TF ops, Keras 3's functions for probabilities, wrapped in
``tf.function``). PyTorch, TensorFlow and scikit-learn are imported lazily.

Operations work on the data :func:`make_data` builds with the loss registry's
example makers (:data:`fastloss.LOSSES`): ``x``/``p`` (predictions), ``y``
(int64 labels) or ``z`` (binary targets).
"""

import functools
import importlib
import importlib.util
import os
from dataclasses import dataclass

import numpy as np

import fastloss
from fastloss._dispatch import cpu_count
from fastloss.losses.registry import LOSSES

ALL_CORES = cpu_count()


def thread_counts():
    """1 thread and all cores (deduplicated on a 1-core machine)."""
    return sorted({1, ALL_CORES})


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Op:
    """One benchmarked operation: a loss of :data:`fastloss.LOSSES` (or ``logsumexp``) in
    one mode. Its data come from the loss row's example maker (``data_loss``)."""

    id: str  # the name in results.json, the report and the README ("sparse_ce")
    loss: str  # LossSpec name, or "logsumexp"
    mode: str  # "logits" or "probabilities"
    layout: str  # "rows": (n, c) inputs; "flat": (m,) elements
    description: str
    data_loss: str  # the LossSpec whose example maker makes the inputs

    @property
    def key(self):
        return (self.loss, self.mode)

    @property
    def pred_key(self):
        return "x" if self.mode == "logits" else "p"


_SCE, _BCE = "sparse_categorical_cross_entropy", "binary_cross_entropy"
OP_ROWS = (
    Op("sparse_ce", _SCE, "logits", "rows",
       "sparse categorical cross-entropy on logits, mean over rows", _SCE),
    Op("logsumexp", "logsumexp", "logits", "rows",
       "log-sum-exp of every row (one value per row)", _SCE),
    Op("sparse_ce_probs", _SCE, "probabilities", "rows",
       "sparse categorical cross-entropy on probabilities, mean over rows", _SCE),
    Op("bce_logits", _BCE, "logits", "flat",
       "binary cross-entropy on logits, mean over elements", _BCE),
    Op("bce_probs", _BCE, "probabilities", "flat",
       "binary cross-entropy on probabilities, mean over elements", _BCE),
)
OP = {op.id: op for op in OP_ROWS}
OP_BY_KEY = {op.key: op.id for op in OP_ROWS}  # (LossSpec name, mode) -> op id
OPS = {op.id: op.description for op in OP_ROWS}
ROW_OPS = tuple(op.id for op in OP_ROWS if op.layout == "rows")
FLAT_OPS = tuple(op.id for op in OP_ROWS if op.layout == "flat")
PROB_OPS = tuple(op.id for op in OP_ROWS if op.mode == "probabilities")


def _example(op, rng, n, c, dtype):
    spec = LOSSES[op.data_loss]
    target, x, _ = spec.make(rng, n, c, dtype, {spec.logits_option: op.mode == "logits"})
    return (target.astype(np.int64) if spec.label_kind == "index" else target), x


def make_data(op, shape, dtype, seed=0):
    """Inputs for ``op`` at ``shape`` ((n, c) for row operations, (m,) for element-wise):
    ``x``/``p`` (logits / probabilities) and ``y`` (class indices) or ``z`` (targets)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    op = OP[op]
    target_key = "y" if LOSSES[op.data_loss].label_kind == "index" else "z"
    if op.layout == "rows":
        n, c = shape
        y, x = _example(op, rng, n, c, dtype)
        return {op.pred_key: x, target_key: y}
    (m,) = shape
    z, x = _example(op, rng, m, 1, dtype)
    x, z = x.reshape(-1), z.reshape(-1)
    if op.mode == "probabilities":
        # U[0,1) rounded to float32 can hit 1.0 (once in 3e7 draws): an infinite loss,
        # which the accuracy runs test on purpose but a speed benchmark does not want.
        e = float(np.finfo(dtype).epsneg)
        np.clip(x, e, 1 - e, out=x)
    return {op.pred_key: x, target_key: z}


def pred(data):
    """The prediction array of ``data`` (``x`` or ``p``)."""
    return data["x"] if "x" in data else data["p"]


def n_elements(data):
    return int(pred(data).size)


def input_bytes(data):
    return int(sum(a.nbytes for a in data.values()))


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    op: str
    label: str  # "1e6x10", "1e7"
    shape: tuple
    dtype: str
    kind: str  # "call overhead", "tall-skinny", ...

    @property
    def elements(self):
        return int(np.prod(self.shape))

    @property
    def slow(self):
        return self.elements > 300_000

    @property
    def id(self):
        return f"{self.op}|{self.label}|{self.dtype}"


ROW_SHAPES = [  # label, shape, kind
    ("32x10", (32, 10), "call overhead"),
    ("256x1000", (256, 1000), "call overhead"),
    ("1e6x10", (1_000_000, 10), "tall-skinny"),
    ("1e5x1000", (100_000, 1000), "wide"),
    ("512x28996", (512, 28996), "vocabulary"),
    ("2048x50257", (2048, 50257), "vocabulary"),
    ("1x1e7", (1, 10_000_000), "one long row"),
]
FLAT_SHAPES = [(f"1e{k}", (10 ** k,), "elements") for k in range(4, 9)]
DTYPES = ("float32", "float64")

# The quick profile (``fastloss bench``, a few minutes on 2 cores): in float32 every
# shape kind up to ~1.5e7 elements (BCE on probabilities up to 1e6: scikit-learn takes
# about a second per call at 1e7), in float64 the smallest shapes. ``--full``
# runs every op x shape x dtype, adding the 1e8-element cases (wide 1e5 x 1000,
# vocabulary 2048 x 50257, BCE 1e8).
_QUICK = {
    "float32": {"32x10", "256x1000", "1e6x10", "512x28996", "1x1e7", "1e4", "1e5", "1e6", "1e7"},
    "float64": {"32x10", "1e4"},
}
_QUICK_EXCLUDE = {("bce_probs", "1e7", "float32")}


def all_cases(ops=None):
    out = []
    for dtype in DTYPES:
        for op in OPS if ops is None else ops:
            shapes = ROW_SHAPES if OP[op].layout == "rows" else FLAT_SHAPES
            out += [Case(op, label, shape, dtype, kind) for label, shape, kind in shapes]
    return out


def cases(profile="quick", ops=None):
    """The cases of a profile: ``"quick"``, ``"full"`` or ``"small"`` (the smoke set)."""
    if profile == "full":
        return all_cases(ops)
    if profile == "small":
        return [c for c in all_cases(ops) if not c.slow]
    return [c for c in all_cases(ops)
            if c.label in _QUICK[c.dtype] and (c.op, c.label, c.dtype) not in _QUICK_EXCLUDE]


# --------------------------------------------------------------------------- libraries

FASTLOSS_LIBS = tuple(f"fastloss-{b}" for b in fastloss.BACKENDS)
OTHER_LIBS = ("numpy", "scipy", "sklearn", "torch", "tensorflow")
LIBRARIES = FASTLOSS_LIBS + OTHER_LIBS
REFERENCE_LIB = "torch"  # ratios are to PyTorch
_MODULE = {"numpy": "numpy", "scipy": "scipy", "sklearn": "sklearn", "torch": "torch",
           "tensorflow": "tensorflow"}


def library_available(lib):
    """``(ok, reason)`` without importing heavy libraries (``find_spec`` only)."""
    if lib.startswith("fastloss-"):
        ok, why = fastloss.available_backends()[lib.split("-", 1)[1]]
        return ok, why
    try:
        found = importlib.util.find_spec(_MODULE[lib]) is not None
    except (ImportError, ValueError):
        found = False
    return (True, "") if found else (False, f"{_MODULE[lib]} is not installed")


def library_version(lib):
    if lib.startswith("fastloss-"):
        return fastloss.__version__
    try:
        return importlib.import_module(_MODULE[lib]).__version__
    except Exception:
        return None


class Unsupported(Exception):
    """The library has no such variant (for example per-element values from ``log_loss``)."""


class ThreadMismatch(Exception):
    """TensorFlow's thread pool was already created with another thread count."""


_TF_THREADS = None  # what TensorFlow's intra-op pool was configured with, in this process


def configure_tensorflow(n_threads):
    """Fix TensorFlow's intra-op threads (once per process, before its first op)."""
    global _TF_THREADS
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    if _TF_THREADS is None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(n_threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
            _TF_THREADS = int(n_threads)
        except RuntimeError:  # already initialised by someone else: read what it has
            _TF_THREADS = tf.config.threading.get_intra_op_parallelism_threads() or ALL_CORES
    return tf


def _tf(n_threads):
    default = int(os.environ.get("FASTLOSS_BENCH_TF_THREADS", ALL_CORES))
    tf = configure_tensorflow(default if _TF_THREADS is None else _TF_THREADS)
    if n_threads != _TF_THREADS:
        raise ThreadMismatch(f"TensorFlow's intra-op thread count is fixed once per process "
                             f"(here {_TF_THREADS}); `fastloss bench` runs each thread count "
                             f"in its own process")
    return tf


def _torch(n_threads):
    import torch

    torch.set_num_threads(int(n_threads))
    return torch


def to_numpy(result):
    """A library's result as a NumPy array (outside any timed region)."""
    if hasattr(result, "detach"):
        result = result.detach()
    if hasattr(result, "numpy"):
        return np.asarray(result.numpy())
    return np.asarray(result)


# --------------------------------------------------------------------------- the registry

COMPARISONS = {op: {} for op in OPS}


def comparison(op, lib, same_as=None, per_element=True):
    """Register ``make_callable`` for ``COMPARISONS[op][lib]``."""

    def deco(make):
        make.same_as = dict(same_as or {})
        make.per_element = per_element
        make.op, make.library = op, lib
        COMPARISONS[op][lib] = make
        return make

    return deco


def _check_reduction(reduction, op):
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction={reduction!r}")
    if OP[op].loss == "logsumexp" and reduction == "mean":
        return "none"  # one value per row either way
    return reduction


# fastloss: every backend, through the public API; the call comes from the op's LossSpec row.
def _fastloss_maker(op, backend):
    if op.loss == "logsumexp":
        def make(d, n_threads, reduction="mean"):
            return functools.partial(fastloss.logsumexp, d["x"], axis=1, n_threads=n_threads,
                                     backend=backend)
        return make
    spec = LOSSES[op.loss]
    target = "y" if spec.label_kind == "index" else "z"
    opts = {spec.logits_option: True} if op.mode == "logits" else {}

    def make(d, n_threads, reduction="mean"):
        return functools.partial(spec.func, d[target], d[op.pred_key], reduction=reduction,
                                 n_threads=n_threads, backend=backend, **opts)
    return make


def _register_fastloss(backend):
    for op in OP_ROWS:
        comparison(op.id, f"fastloss-{backend}")(_fastloss_maker(op, backend))


for _b in fastloss.BACKENDS:
    _register_fastloss(_b)


def _mean(reduction, f):
    return (lambda: f().mean()) if reduction == "mean" else f


# NumPy, written the way people write it (stable formulas, full-size temporaries).
def _np_lse(x):
    m = x.max(axis=1, keepdims=True)
    return m[:, 0] + np.log(np.exp(x - m).sum(axis=1))


@comparison("sparse_ce", "numpy")
def _(d, n_threads, reduction="mean"):
    x, y = d["x"], d["y"]
    rows = np.arange(x.shape[0])
    return _mean(reduction, lambda: _np_lse(x) - x[rows, y])


@comparison("logsumexp", "numpy")
def _(d, n_threads, reduction="mean"):
    x = d["x"]
    return lambda: _np_lse(x)


@comparison("sparse_ce_probs", "numpy")
def _(d, n_threads, reduction="mean"):
    p, y = d["p"], d["y"]
    rows = np.arange(p.shape[0])
    return _mean(reduction, lambda: -np.log(p[rows, y]))


@comparison("bce_logits", "numpy")
def _(d, n_threads, reduction="mean"):
    x, z = d["x"], d["z"]
    return _mean(reduction, lambda: np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x))))


@comparison("bce_probs", "numpy")
def _(d, n_threads, reduction="mean"):
    p, z = d["p"], d["z"]
    return _mean(reduction, lambda: -(z * np.log(p) + (1 - z) * np.log(1 - p)))


# SciPy.
@comparison("sparse_ce", "scipy")
def _(d, n_threads, reduction="mean"):
    from scipy import special

    x, y = d["x"], d["y"]
    rows = np.arange(x.shape[0])
    return _mean(reduction, lambda: special.logsumexp(x, axis=1) - x[rows, y])


@comparison("logsumexp", "scipy")
def _(d, n_threads, reduction="mean"):
    from scipy import special

    x = d["x"]
    return lambda: special.logsumexp(x, axis=1)


@comparison("bce_logits", "scipy")
def _(d, n_threads, reduction="mean"):
    from scipy import special

    x, z = d["x"], d["z"]
    return _mean(reduction, lambda: -(z * special.log_expit(x) + (1 - z) * special.log_expit(-x)))


@comparison("bce_probs", "scipy")
def _(d, n_threads, reduction="mean"):
    from scipy import special

    p, z = d["p"], d["z"]
    return _mean(reduction, lambda: -(special.xlogy(z, p) + special.xlog1py(1 - z, -p)))


# scikit-learn: log_loss clips to [eps, 1-eps] with eps = finfo(y_pred.dtype).eps.
@comparison("sparse_ce_probs", "sklearn", same_as={"clip": "sklearn"}, per_element=False)
def _(d, n_threads, reduction="mean"):
    if reduction != "mean":
        raise Unsupported("sklearn.metrics.log_loss returns the mean only")
    from sklearn.metrics import log_loss

    p, y = d["p"], d["y"]
    labels = np.arange(p.shape[1])
    return lambda: log_loss(y, p, labels=labels)


@comparison("bce_probs", "sklearn", same_as={"clip": "sklearn"}, per_element=False)
def _(d, n_threads, reduction="mean"):
    if reduction != "mean":
        raise Unsupported("sklearn.metrics.log_loss returns the mean only")
    from sklearn.metrics import log_loss

    p, z = d["p"], d["z"]
    return lambda: log_loss(z, p, labels=[0, 1])


# PyTorch: zero-copy tensors; F.binary_cross_entropy clamps each log at -100.
@comparison("sparse_ce", "torch")
def _(d, n_threads, reduction="mean"):
    torch = _torch(n_threads)
    F = torch.nn.functional
    x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    return lambda: F.cross_entropy(x, y, reduction=reduction)


@comparison("logsumexp", "torch")
def _(d, n_threads, reduction="mean"):
    torch = _torch(n_threads)
    x = torch.from_numpy(d["x"])
    return lambda: torch.logsumexp(x, dim=1)


@comparison("sparse_ce_probs", "torch")
def _(d, n_threads, reduction="mean"):
    torch = _torch(n_threads)
    F = torch.nn.functional
    p, y = torch.from_numpy(d["p"]), torch.from_numpy(d["y"])
    return lambda: F.nll_loss(torch.log(p), y, reduction=reduction)


@comparison("bce_logits", "torch")
def _(d, n_threads, reduction="mean"):
    torch = _torch(n_threads)
    F = torch.nn.functional
    x, z = torch.from_numpy(d["x"]), torch.from_numpy(d["z"])
    return lambda: F.binary_cross_entropy_with_logits(x, z, reduction=reduction)


@comparison("bce_probs", "torch", same_as={"clip": "torch"})
def _(d, n_threads, reduction="mean"):
    torch = _torch(n_threads)
    F = torch.nn.functional
    p, z = torch.from_numpy(d["p"]), torch.from_numpy(d["z"])
    return lambda: F.binary_cross_entropy(p, z, reduction=reduction)


# TensorFlow: tensors made (copied) outside the timed callable; graph functions traced
# on the first (untimed) call; Keras 3 (TF backend) for losses on probabilities, which
# clip to [1e-7, 1 - 1e-7] (and renormalise rows for sparse CE).
def _tf_call(tf, fn, *arrays):
    tensors = [tf.constant(a) for a in arrays]
    g = tf.function(fn)
    return lambda: g(*tensors)


@comparison("sparse_ce", "tensorflow")
def _(d, n_threads, reduction="mean"):
    tf = _tf(n_threads)

    def f(x, y):
        v = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)
        return tf.reduce_mean(v) if reduction == "mean" else v

    return _tf_call(tf, f, d["x"], d["y"])


@comparison("logsumexp", "tensorflow")
def _(d, n_threads, reduction="mean"):
    tf = _tf(n_threads)
    return _tf_call(tf, lambda x: tf.reduce_logsumexp(x, axis=1), d["x"])


@comparison("sparse_ce_probs", "tensorflow", same_as={"clip": "keras"})
def _(d, n_threads, reduction="mean"):
    tf = _tf(n_threads)
    import keras

    def f(p, y):
        v = keras.losses.sparse_categorical_crossentropy(y, p)
        return tf.reduce_mean(v) if reduction == "mean" else v

    return _tf_call(tf, f, d["p"], d["y"])


@comparison("bce_logits", "tensorflow")
def _(d, n_threads, reduction="mean"):
    tf = _tf(n_threads)

    def f(x, z):
        v = tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x)
        return tf.reduce_mean(v) if reduction == "mean" else v

    return _tf_call(tf, f, d["x"], d["z"])


@comparison("bce_probs", "tensorflow", same_as={"clip": "keras"})
def _(d, n_threads, reduction="mean"):
    tf = _tf(n_threads)
    import keras

    def f(p, z):
        # element-wise: a trailing axis of 1, which keras.losses.binary_crossentropy averages over
        v = keras.losses.binary_crossentropy(z[:, None], p[:, None])
        return tf.reduce_mean(v) if reduction == "mean" else v

    return _tf_call(tf, f, d["p"], d["z"])


def make(op, lib, data, n_threads, reduction="mean"):
    """``COMPARISONS[op][lib](data, n_threads, reduction)`` with the reduction checked."""
    return COMPARISONS[op][lib](data, n_threads, _check_reduction(reduction, op))


def libraries(op):
    return list(COMPARISONS[op])


# --------------------------------------------------------------------------- checking


def expected(op, data, same_as=None, reduction="mean"):
    """The value a library must give: fastloss's NumPy reference backend with the
    library's semantics (``same_as``), computed in float64 inside and rounded once."""
    f = make(op, "fastloss-numpy", data, ALL_CORES, reduction)
    if same_as:
        f = functools.partial(f.func, *f.args, **{**f.keywords, **same_as})
    return to_numpy(f())


def tolerance(dtype):
    """Relative tolerance for "the same result": float32 libraries compute and sum in
    float32 (up to ~log2(N) roundings), float64 ones agree to ~1e-12."""
    return 2e-4 if np.dtype(dtype) == np.float32 else 1e-9


def mismatch(got, exp, dtype):
    """Error of ``got`` against ``exp`` in units of the tolerance (<= 1 passes).

    Scaled by ``max(1, max|exp|)`` so near-zero values of a row of results are judged
    on the row's scale; equal infinities and NaN == NaN count as exact.
    """
    got = np.asarray(got, dtype=np.float64)
    exp = np.asarray(exp, dtype=np.float64)
    if got.shape != exp.shape:
        return float("inf")
    same = (got == exp) | (np.isnan(got) & np.isnan(exp))
    fin = np.isfinite(exp)
    scale = max(1.0, float(np.max(np.abs(exp[fin]))) if fin.any() else 1.0)
    with np.errstate(invalid="ignore"):
        err = np.where(same, 0.0, np.abs(got - exp) / scale)
    err = np.where(np.isnan(err), np.inf, err)
    return float(err.max() / tolerance(dtype)) if err.size else 0.0


def check(op, lib, data, result, reduction="mean", exp=None):
    """``(ok, score)``: does ``lib``'s result agree with :func:`expected`?"""
    if exp is None:
        exp = expected(op, data, COMPARISONS[op][lib].same_as, _check_reduction(reduction, op))
    score = mismatch(to_numpy(result), exp, pred(data).dtype)
    return score <= 1.0, score
