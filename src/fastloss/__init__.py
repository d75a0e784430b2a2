"""fastloss: fused, exact, deterministic classification losses for NumPy on the CPU.

Layout (each folder is a README section):

- ``losses/``: the in-memory API: the loss functions, their gradients, softmax and
  log-sum-exp, ``elementwise_loss``, the registry of losses (``LOSSES``) and
  ``losses/_calls.py``, the one module that calls the loss kernels.
- ``evaluation/``: ``evaluate`` and ``LossAccumulator``: one streaming, exact pass
  over a prediction dump.
- ``dask/``, ``cli/``, ``bench/``: the same pass on a cluster, the ``fastloss`` command,
  the benchmark runner.
- ``torch``, ``keras``, ``scipy``, ``sklearn``, ``objectives``: drop-ins that mirror
  other libraries' namespaces.
- ``fastloss.kernels`` (``kernels/`` in the repository): the kernel contract and its
  three backends.
"""

from fastloss._dispatch import BACKENDS, available_backends, refresh_config
from fastloss._info import info
from fastloss._version import __version__
from fastloss.evaluation import LossAccumulator, evaluate
from fastloss.losses import (
    LOSSES,
    binary_cross_entropy,
    binary_cross_entropy_grad,
    categorical_cross_entropy,
    categorical_cross_entropy_grad,
    elementwise_loss,
    kl_divergence,
    kl_divergence_grad,
    log_softmax,
    logsumexp,
    mean_squared_error,
    mean_squared_error_grad,
    softmax,
    sparse_categorical_cross_entropy,
    sparse_categorical_cross_entropy_grad,
)

__all__ = [
    "BACKENDS",
    "LOSSES",
    "LossAccumulator",
    "__version__",
    "available_backends",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "categorical_cross_entropy",
    "categorical_cross_entropy_grad",
    "elementwise_loss",
    "evaluate",
    "info",
    "kl_divergence",
    "kl_divergence_grad",
    "log_softmax",
    "logsumexp",
    "mean_squared_error",
    "mean_squared_error_grad",
    "refresh_config",
    "softmax",
    "sparse_categorical_cross_entropy",
    "sparse_categorical_cross_entropy_grad",
]
