"""The in-memory losses: public functions, gradients, softmax, custom losses, the registry.

``_calls.py`` is the one door to the loss kernels: every caller (the functions here,
``LossAccumulator``, ``fastloss.evaluate``, the drop-ins) builds a ``KernelCall`` with a
keyword-only builder, and none spells a kernel's positional order itself.
"""

from fastloss.losses._calls import Clip, KernelCall, RowLayout
from fastloss.losses.custom import elementwise_loss
from fastloss.losses.functions import (
    binary_cross_entropy,
    categorical_cross_entropy,
    kl_divergence,
    mean_squared_error,
    sparse_categorical_cross_entropy,
)
from fastloss.losses.gradients import (
    binary_cross_entropy_grad,
    categorical_cross_entropy_grad,
    kl_divergence_grad,
    mean_squared_error_grad,
    sparse_categorical_cross_entropy_grad,
)
from fastloss.losses.registry import LOSSES, LossSpec
from fastloss.losses.log_sum_exp import log_softmax, logsumexp, softmax

__all__ = [
    "LOSSES",
    "Clip",
    "KernelCall",
    "LossSpec",
    "RowLayout",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "categorical_cross_entropy",
    "categorical_cross_entropy_grad",
    "elementwise_loss",
    "kl_divergence",
    "kl_divergence_grad",
    "log_softmax",
    "logsumexp",
    "mean_squared_error",
    "mean_squared_error_grad",
    "softmax",
    "sparse_categorical_cross_entropy",
    "sparse_categorical_cross_entropy_grad",
]
