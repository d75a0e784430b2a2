"""``keras.src.losses.losses`` with ``fastloss.keras`` in front (see _ov_scipy_special)."""

from keras.src.losses import losses as _up

import fastloss.keras as _fl


def __getattr__(name):
    return getattr(_fl if name in _fl.__all__ else _up, name)
