"""``tf_keras.losses`` with ``fastloss.keras.legacy`` in front (see _ov_scipy_special)."""

from tf_keras.src import losses as _up

import fastloss.keras.legacy as _fl


def __getattr__(name):
    return getattr(_fl if name in _fl.__all__ else _up, name)
