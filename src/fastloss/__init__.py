"""fastloss: fused, exact, deterministic classification losses for NumPy on the CPU."""

__version__ = "0.1.0"

from fastloss._accumulate import LossAccumulator
from fastloss._api import binary_cross_entropy
from fastloss._api import categorical_cross_entropy
from fastloss._api import kl_divergence
from fastloss._api import log_softmax
from fastloss._api import logsumexp
from fastloss._api import mean_squared_error
from fastloss._api import softmax
from fastloss._api import sparse_categorical_cross_entropy
from fastloss._custom import elementwise_loss
from fastloss._dispatch import BACKENDS
from fastloss._evaluate import evaluate
from fastloss._grad import binary_cross_entropy_grad
from fastloss._grad import categorical_cross_entropy_grad
from fastloss._grad import kl_divergence_grad
from fastloss._grad import mean_squared_error_grad
from fastloss._grad import sparse_categorical_cross_entropy_grad
from fastloss._dispatch import available_backends
from fastloss._info import info
from fastloss._registry import LOSSES

__all__ = [
    "BACKENDS",
    "LOSSES",
    "LossAccumulator",
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
    "softmax",
    "sparse_categorical_cross_entropy",
    "sparse_categorical_cross_entropy_grad",
]
