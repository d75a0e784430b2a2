"""``tf_keras.losses`` with ``fastloss.keras.legacy`` in front (see _ov_scipy_special).

With ``FASTLOSS_UPSTREAM_TF_OUT=1`` (the ``tf-keras-tf-out`` suite) the drop-in's results
are converted with ``tf.convert_to_tensor``: the tests that hand NumPy in and pass the
result to ``tf.test.TestCase.evaluate`` then check fastloss's numbers and dtypes, the
container aside (fastloss returns NumPy for NumPy-like inputs).
"""

import os

from tf_keras.src import losses as _up

import fastloss.keras.legacy as _fl

_TF_OUT = os.environ.get("FASTLOSS_UPSTREAM_TF_OUT") == "1"


def _tf_out(obj):
    import tensorflow as tf

    if isinstance(obj, type):
        class Wrapped(obj):
            def __call__(self, *args, **kwargs):
                return tf.convert_to_tensor(super().__call__(*args, **kwargs))

        Wrapped.__name__ = Wrapped.__qualname__ = obj.__name__
        return Wrapped

    def wrapped(*args, **kwargs):
        return tf.convert_to_tensor(obj(*args, **kwargs))

    return wrapped


def __getattr__(name):
    if name in _fl.__all__:
        obj = getattr(_fl, name)
        return _tf_out(obj) if _TF_OUT and callable(obj) and name != "Reduction" else obj
    return getattr(_up, name)
