"""NumPy reference backend (always available; the oracle of the tests)."""

from ._kernels import (  # noqa: F401
    AVAILABLE,
    WHY_UNAVAILABLE,
    argmax_rows,
    bce,
    categorical_ce,
    elementwise,
    first_outside_unit_interval,
    kl,
    logsumexp_rows,
    mse,
    softmax_rows,
    sparse_ce,
)
from ._grad import (  # noqa: F401
    bce_grad,
    categorical_ce_grad,
    kl_grad,
    mse_grad,
    sparse_ce_grad,
)
