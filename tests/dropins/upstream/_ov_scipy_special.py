"""``scipy.special`` with fastloss's drop-ins in front (the upstream tests import from here).

Names ``fastloss.scipy`` provides resolve to fastloss; every other name (helpers the
test files use to build inputs or references) stays SciPy's.
"""

import scipy.special as _up
from scipy._lib._array_api import xp_capabilities_table as _table

import fastloss.scipy as _fl

# make_xp_test_case(f) reads SciPy's capability table, keyed by the function object
for _n in _fl.__all__:
    _f = getattr(_up, _n, None)
    if _f in _table:
        _table[getattr(_fl, _n)] = _table[_f]


def __getattr__(name):
    return getattr(_fl if name in _fl.__all__ else _up, name)
