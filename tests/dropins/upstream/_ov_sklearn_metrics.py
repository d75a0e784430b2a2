"""``sklearn.metrics`` with ``fastloss.sklearn`` in front (see _ov_scipy_special)."""

import sklearn.metrics as _up

import fastloss.sklearn as _fl


def __getattr__(name):
    return getattr(_fl if name in _fl.__all__ else _up, name)
