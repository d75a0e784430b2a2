"""Docstring pieces shared by the public functions, written once (as SciPy's ``_docstring``).

A line holding only ``%(name)s`` in a docstring decorated with :func:`fill` is replaced by
the piece ``name``, indented like the placeholder.
"""

import re

PIECES = {
    "sample_weight": """\
sample_weight : array_like, optional
    Non-negative, finite weight of each sample (the batch shape, or a scalar).
    ``None``: every sample weighs 1.""",
    "clip": """\
clip : None, float or {'keras', 'keras2', 'torch', 'sklearn'}, optional
    Probabilities only: ``None`` takes the exact log (``+inf`` at ``p = 0``); a float
    ``eps`` clips to ``[eps, 1 - eps]``; a preset reproduces that library's clipping.""",
    "reduction": """\
reduction : {'mean', 'sum', 'none'}, default 'mean'
    ``'none'``: ``w_i * l_i`` per sample; ``'sum'``: their sum; ``'mean'``:
    ``sum(w_i * l_i) / sum(w_i)`` (NaN, with a RuntimeWarning, when ``sum(w_i) = 0``).""",
    "nan_policy": """\
nan_policy : {'propagate', 'omit', 'raise'}, default 'propagate'
    A NaN input gives a NaN loss, weight 0 (``'omit'``), or a ValueError naming its index.""",
    "backend": """\
backend : {'cython', 'numba', 'numpy'}, optional
    Kernel backend; ``None``: ``FASTLOSS_BACKEND``, else the best one available.
n_threads : int, optional
    Threads of the kernel; ``None``: ``FASTLOSS_NUM_THREADS``, else every core.""",
    "returns_loss": """\
loss : ndarray or scalar of y_pred's float dtype
    A scalar for ``'mean'`` and ``'sum'``; per-sample values for ``'none'``. float32 for
    float16 and bfloat16 ``y_pred`` (read as they are, computed as float32).""",
    "raises": """\
ValueError
    Shapes that do not match, labels out of range, negative or non-finite weights, an
    unknown ``reduction``, ``nan_policy`` or ``backend``, ``n_threads < 1``, probabilities
    outside [0, 1] (the message suggests ``from_logits=True``).
TypeError
    Non-numeric arrays or options of the wrong type.
RuntimeError
    A ``backend`` that is not built here (``fastloss.available_backends()`` says why).""",
    "determinism": """\
Per-sample values are computed in float64 (on logits with the stable forms of the
kernel contract) and rounded once to ``y_pred``'s dtype. Sums are float64 over fixed
blocks of rows combined by an exact sum, so every result is bitwise the same for any
``n_threads``, any chunking (:class:`fastloss.LossAccumulator`) and memory layout.""",
    "grad_returns": """\
loss : scalar of y_pred's dtype
    The reduced loss, bitwise the value of the loss function.
grad : ndarray, y_pred's shape and dtype
    Gradient of the reduced loss with respect to ``y_pred`` (float32 for float16 and
    bfloat16 ``y_pred``, like the loss).
hess : ndarray, y_pred's shape and dtype
    Its diagonal (only with ``hessian=True``).""",
    "grad_options": """\
reduction : {'mean', 'sum'}, default 'mean'
    ``'mean'`` scales sample ``i`` by ``w_i / sum(w)`` (as autograd on the mean);
    ``'sum'`` by ``w_i`` (per-sample gradients, as gradient boosting wants).
hessian : bool, default False
    Also return the diagonal of the Hessian.
out : ndarray or (ndarray, ndarray), optional
    Buffers of ``y_pred``'s shape and result dtype to fill and return.""",
    "torch_legacy": """\
size_average, reduce : bool, optional
    PyTorch's deprecated arguments; when given they choose the reduction as in PyTorch.""",
    "torch_reduction": """\
reduction : {'mean', 'sum', 'none'}, default 'mean'
    As in PyTorch.""",
    "torch_returns": """\
ndarray, NumPy scalar or torch.Tensor
    The input's dtype; a tensor when the input was a tensor, differentiable (autograd)
    when an input requires grad.""",
    "torch_raises": """\
RuntimeError, ValueError, IndexError
    Where PyTorch raises them, with PyTorch's messages (shapes, dtypes, targets).""",
    "dropin_notes": """\
Per-sample values are computed in float64 and rounded once to the input's dtype;
reductions add them in float64 and round once, so results are the same for any thread
count. The module docstring lists the mirrored semantics and the documented deviations.""",
    "scipy_out": """\
out : ndarray, optional
    Where to write the result (as a ufunc's ``out``; NumPy's 1-tuple too).
where : array_like of bool, optional
    Compute only where True (NumPy's ufunc ``where``: elsewhere ``out`` keeps its
    values).
casting : {'no', 'equiv', 'safe', 'same_kind', 'unsafe'}, default 'same_kind'
    NumPy's rule for casting the inputs to the loop and the loop to ``out``.
order : {'K', 'C', 'F', 'A'}, default 'K'
    Memory layout of a new result (``'K'``: like the input).
dtype : dtype, optional
    The loop's result dtype, as the ufunc keyword (``TypeError`` for a dtype the
    function has no loop for).
subok : bool, default True
    Give ndarray-subclass inputs their type back (masked arrays with their masks).
signature : str or tuple, optional
    NumPy's loop signature (``"ff->f"``, or dtypes and None), instead of ``dtype``.""",
    "scipy_ufunc_raises": """\
TypeError
    Inputs with no loop (as SciPy: complex except for ``xlogy``, long double except
    for ``expit``/``log_expit``, non-numeric), a ``dtype`` with no loop, a cast that
    ``casting`` forbids, a non-bool ``where``, an ``out`` that is not an ndarray.
ValueError
    An unknown ``casting`` or ``order``; shapes (with ``where`` and ``out``) that do
    not broadcast.""",
    "keras_notes": """\
Keras's float32 element-wise steps (clip, renormalisation, smoothing) are kept in its
order; logs, log-sum-exp and sums are float64, rounded once, so results are Keras's
formula correctly rounded and the same for any thread count. The module docstring
lists the deviations.""",
}


def _section(title, body):
    return f"{title}\n{'-' * len(title)}\n{body}"


# pieces made of pieces: whole sections that many docstrings share
PIECES.update({
    "loss_options": "\n".join(PIECES[k] for k in ("reduction", "nan_policy", "backend")),
    "returns_raises_loss": _section("Returns", PIECES["returns_loss"]) + "\n\n"
    + _section("Raises", PIECES["raises"]),
    "notes_determinism": _section("Notes", PIECES["determinism"]),
    "grad_tail": PIECES["grad_options"] + "\n" + PIECES["backend"] + "\n\n"
    + _section("Returns", PIECES["grad_returns"]) + "\n\n" + _section("Raises", PIECES["raises"]),
    "torch_legacy_reduction": PIECES["torch_legacy"] + "\n" + PIECES["torch_reduction"],
    "torch_returns_raises": _section("Returns", PIECES["torch_returns"]) + "\n\n"
    + _section("Raises", PIECES["torch_raises"]),
    "notes_dropin": _section("Notes", PIECES["dropin_notes"]),
    "notes_keras": _section("Notes", PIECES["keras_notes"]),
    "keras_logit_options": """\
from_logits : bool, default False
    ``y_pred`` holds logits (else probabilities, clipped as Keras clips them).
label_smoothing : float, default 0.0
    As in Keras.
axis : int, default -1
    The axis reduced per sample.""",
    "keras_returns_raises": _section("Returns", """\
ndarray or scalar
    Per-sample values (the reduced axis removed), ``y_pred``'s float dtype.""") + "\n\n"
    + _section("Raises", """\
ValueError
    Shapes that do not broadcast, labels out of range, an unknown reduction."""),
    "keras3_options": """\
reduction : str, default 'sum_over_batch_size'
    As in Keras 3.
name : str, optional
    The loss's name.
dtype : str, optional
    Compute dtype (``None``: float32, Keras's floatx).""",
    "keras2_options": """\
reduction : str, default 'auto'
    As in tf.keras 2 (``Reduction``).
name : str, optional
    The loss's name.""",
})

_PLACEHOLDER = re.compile(r"^([ \t]*)%\((\w+)\)s[ \t]*$", re.M)


def fill(func):
    """Replace the ``%(name)s`` lines of ``func.__doc__`` with the shared pieces."""
    def piece(m):
        indent = m.group(1)
        return "\n".join(indent + line if line else "" for line in PIECES[m.group(2)].split("\n"))

    func.__doc__ = _PLACEHOLDER.sub(piece, func.__doc__)
    return func
