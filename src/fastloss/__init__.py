"""fastloss: fused, exact, deterministic classification losses for NumPy on the CPU."""

__version__ = "0.1.0"

from fastloss.evaluation.accumulator import LossAccumulator
from fastloss.losses.functions import binary_cross_entropy
from fastloss.losses.functions import categorical_cross_entropy
from fastloss.losses.functions import kl_divergence
from fastloss.losses.functions import log_softmax
from fastloss.losses.functions import logsumexp
from fastloss.losses.functions import mean_squared_error
from fastloss.losses.functions import softmax
from fastloss.losses.functions import sparse_categorical_cross_entropy
from fastloss.losses.custom import elementwise_loss
from fastloss._dispatch import BACKENDS
from fastloss.evaluation.evaluator import evaluate
from fastloss.losses.gradients import binary_cross_entropy_grad
from fastloss.losses.gradients import categorical_cross_entropy_grad
from fastloss.losses.gradients import kl_divergence_grad
from fastloss.losses.gradients import mean_squared_error_grad
from fastloss.losses.gradients import sparse_categorical_cross_entropy_grad
from fastloss._dispatch import available_backends
from fastloss._info import info
from fastloss.losses.registry import LOSSES

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
