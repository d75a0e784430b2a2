"""Exact sums of float64 values: :class:`ExactSums`, the state behind every mean fastloss
streams (the accumulator's totals, the evaluator's per-class and per-group sums).

Every finite float64 is an integer multiple of ``2**-1126``, so a sum of them is an
integer: kept exactly in 32-bit limbs, it is associative and commutative, and its one
final rounding is what ``math.fsum`` returns for the same values. Any chunking and any
merge order therefore give the same bits.
"""

import numpy as np

__all__ = ["ExactSums"]

_SCALE = 1126  # finite float64 values are integers times 2**-1126 (2**-1074 is the subnormal
# grid; 52 more bits keep the lowest mantissa bit of every float at a non-negative position)
_LIMB_BITS = 32
_NLIMB = 80  # 80 * 32 = 2560 bits > 1126 + _MAX_EXP + 64 (count headroom) + sign
_MAX_EXP = 1300  # values * 2**shift below 2**1300 (a shifted float64 partial of a loss with
# weights near 1e308 stays below 2**1200): 1126 + 1300 + 64 + sign < 80 * 32
_BINCOUNT_MAX = 1 << 21  # digits are < 2**32: a bincount of up to 2**21 of them is exact
_NORMALIZE_EVERY = 256  # each add grows a limb by < 2**53; normalise long before 2**63
_TWO32, _TWO64 = 2.0 ** 32, 2.0 ** 64


class ExactSums:
    r"""Exact sums of float64 values in ``n_keys`` bins, mergeable and order-independent.

    Parameters
    ----------
    n_keys : int, default 1
        Number of bins (``grow`` adds more).

    See Also
    --------
    LossAccumulator : two of these (sum of ``w*l``, sum of ``w``) per loss.
    math.fsum : the same rounding, for one list of values.

    Notes
    -----
    Every finite float64 is an integer multiple of ``2**-1126``; each bin keeps that integer
    exactly in 80 limbs of 32 bits, so adding is associative and commutative and
    :meth:`value` (the exact sum rounded once) is ``math.fsum``'s result for the same values,
    whatever the order of :meth:`add` and :meth:`merge` calls. :meth:`add` is vectorised (no
    Python loop over values). Non-finite values follow IEEE addition (any NaN, or both
    infinities: NaN; else the infinity), like ``fastloss.kernels._blocks.combine``.
    :meth:`state` / :meth:`from_state` round-trip through JSON exactly.

    Examples
    --------
    >>> from fastloss.evaluation import ExactSums
    >>> s = ExactSums(2)
    >>> s.add([1e16, 1.0, -1e16, 0.5], keys=[0, 0, 0, 1])
    >>> s.value(0), s.value(1), sum([1e16, 1.0, -1e16])
    (1.0, 0.5, 0.0)
    """

    def __init__(self, n_keys=1):
        self.limbs = np.zeros((int(n_keys), _NLIMB), dtype=np.int64)
        self.flags = np.zeros((int(n_keys), 3), dtype=bool)  # seen +inf, -inf, NaN
        self._adds = 0

    @property
    def n_keys(self):
        return self.limbs.shape[0]

    def grow(self, n_keys):
        """Make room for keys ``0 .. n_keys - 1`` (new keys sum to 0)."""
        extra = int(n_keys) - self.n_keys
        if extra > 0:
            self.limbs = np.concatenate([self.limbs, np.zeros((extra, _NLIMB), np.int64)])
            self.flags = np.concatenate([self.flags, np.zeros((extra, 3), bool)])

    def copy(self):
        new = ExactSums.__new__(ExactSums)
        new.limbs, new.flags, new._adds = self.limbs.copy(), self.flags.copy(), self._adds
        return new

    def add(self, values, keys=None, shift=0):
        """Add ``values[i] * 2**shift`` to bin ``keys[i]`` (all to bin 0 when ``keys`` is
        None). ``shift`` (an int >= 0) takes back, exactly, a scaling by ``2**-shift`` that
        kept the values finite (sums of weights near 1e308): the bins hold values up to
        ``2**1300``."""
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.size == 0:
            return
        shift = int(shift)
        if shift < 0:
            raise ValueError(f"shift must be >= 0, got {shift}")
        k = (np.zeros(v.size, np.int64) if keys is None
             else np.asarray(keys, dtype=np.int64).reshape(-1))
        if k.shape != v.shape:
            raise ValueError("keys and values must have the same length")
        fin = np.isfinite(v)
        if not fin.all():
            bad, kb = v[~fin], k[~fin]
            self.flags[kb[bad == np.inf], 0] = True
            self.flags[kb[bad == -np.inf], 1] = True
            self.flags[kb[np.isnan(bad)], 2] = True
            v, k = v[fin], k[fin]
        for s in range(0, v.size, _BINCOUNT_MAX):
            self._add_finite(v[s:s + _BINCOUNT_MAX], k[s:s + _BINCOUNT_MAX], shift)

    def _add_finite(self, v, k, shift=0):
        if v.size == 0:
            return
        _, e = np.frexp(v)
        if shift and int(e.max()) + shift > _MAX_EXP:
            raise OverflowError(f"values times 2**{shift} reach 2**{int(e.max()) + shift}, beyond "
                                f"the exact sums' range (2**{_MAX_EXP})")
        # v * 2**shift = V * 2**-_SCALE with V an integer whose lowest possible bit is at
        # p = e + shift - 53 + _SCALE >= 0; V spans the limbs j0 .. j0 + 2 (j0 = p // 32).
        j0 = (e.astype(np.int64) + (shift + _SCALE - 53)) >> 5
        a = np.abs(np.ldexp(v, shift + _SCALE - _LIMB_BITS * j0))  # integer, < 2**84: exact
        d2 = np.floor(a * (1.0 / _TWO64))
        a = a - d2 * _TWO64  # the low 64 bits of an integer with <= 53 significant bits: exact
        d1 = np.floor(a * (1.0 / _TWO32))
        d0 = a - d1 * _TWO32
        lo = int(j0.min())
        R = int(j0.max()) - lo + 3  # the limbs touched: lo .. lo + R - 1
        K = self.n_keys
        idx = k * R + (j0 - lo)
        acc = np.zeros(K * R, dtype=np.int64)
        for off, d in enumerate((d0, d1, d2)):
            s = np.bincount(idx + off, weights=np.copysign(d, v), minlength=K * R)
            acc += s[:K * R].astype(np.int64)  # |s| < 2**53: an exact integer
        self.limbs[:, lo:lo + R] += acc.reshape(K, R)
        self._adds += 1
        if self._adds >= _NORMALIZE_EVERY:
            self._normalize()

    def _normalize(self):
        L = self.limbs
        carry = L[:, :-1] >> _LIMB_BITS
        L[:, :-1] -= carry << _LIMB_BITS
        L[:, 1:] += carry
        self._adds = 0

    def merge(self, other):
        self.grow(other.n_keys)
        self._normalize()
        o = other.copy()
        o._normalize()
        self.limbs[:o.n_keys] += o.limbs
        self.flags[:o.n_keys] |= o.flags
        return self

    def exact_int(self, key=0):
        """The sum of bin ``key`` as an integer ``V`` (the value is ``V * 2**-1126``)."""
        V = 0
        row = self.limbs[key]
        for j in np.flatnonzero(row)[::-1]:
            V += int(row[j]) << (_LIMB_BITS * int(j))
        return V

    def value(self, key=0, shift=0):
        """The sum of bin ``key`` times ``2**-shift``, rounded once to float64 (+-inf when
        it overflows, as IEEE addition would)."""
        pinf, ninf, nan = (bool(f) for f in self.flags[key])
        if nan or (pinf and ninf):
            return float("nan")
        if pinf:
            return float("inf")
        if ninf:
            return float("-inf")
        V = self.exact_int(key)
        try:
            return V / (1 << (_SCALE + int(shift)))  # int / int is correctly rounded
        except OverflowError:
            return float("inf") if V > 0 else float("-inf")

    def overflow_shift(self, keys):
        """The least ``k >= 0`` that brings the sums of ``keys`` times ``2**-k`` below
        ``2**1023`` (0 when none reaches it), so :meth:`value` ``(key, k)`` is finite for
        each: a ratio of two sums scaled so is the ratio of the exact sums rounded once each."""
        bits = max(abs(self.exact_int(key)).bit_length() for key in keys)
        return max(0, bits - _SCALE - 1023)

    def values(self):
        return np.array([self.value(k) for k in range(self.n_keys)], dtype=np.float64)

    def state(self):
        return {"ints": [format(self.exact_int(k), "x") for k in range(self.n_keys)],
                "flags": ["".join("1" if f else "0" for f in row) for row in self.flags]}

    @classmethod
    def from_state(cls, d):
        ints = [int(s, 16) for s in d["ints"]]
        new = cls(len(ints))
        mask = (1 << _LIMB_BITS) - 1
        for k, V in enumerate(ints):
            for j in range(_NLIMB - 1):
                new.limbs[k, j] = V & mask
                V >>= _LIMB_BITS
            new.limbs[k, _NLIMB - 1] = V
        for k, f in enumerate(d["flags"]):
            new.flags[k] = [c == "1" for c in f]
        return new
