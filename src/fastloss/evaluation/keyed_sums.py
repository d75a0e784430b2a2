"""Per-class and per-group loss sums that do not depend on the chunking: :class:`KeyedSums`.

The per-sample losses (``reduction="none"`` values, in ``y_pred``'s dtype) are summed per
key in row order within fixed *segments* of :data:`SEGMENT_ROWS` rows aligned to row 0
(one float64 ``bincount`` per chunk), and the segment partials are added exactly
(:class:`~fastloss.evaluation.exact.ExactSums`). Chunks are whole numbers of segments, so
every segment sees the same rows in the same order whatever the chunk size.
"""

import numpy as np

__all__ = ["SEGMENT_ROWS", "KeyedSums", "row_values"]

SEGMENT_ROWS = 256  # a segment has at most 256 distinct keys: at most one exact add per row
_SEGMENT_SHIFT = SEGMENT_ROWS.bit_length() - 1  # row >> shift is the row's segment
_DENSE_CELLS = 1 << 16  # up to this many (segment, key) cells, bincount over all of them
_SLAB_ROWS = 1 << 16  # multi-label rows per bincount (whole segments): ~1M values


def row_values(out, call, n):
    """Per-row loss values and weights (None: every weight is 1); multi-label rows are
    summed over their columns in column order (a fixed order)."""
    w = call.weights() if call.weighted else None
    if call.row_mult == 1:
        return out, w
    # column by column into float64 sums (the same additions as a float64 copy of the
    # chunk, without that copy: 8 bytes per value)
    v = out.reshape(n, call.row_mult)
    sv = v[:, 0].astype(np.float64)
    for j in range(1, call.row_mult):
        sv += v[:, j]
    if w is None:
        return sv, np.full(n, float(call.row_mult))
    w = w.reshape(n, call.row_mult)
    swt = w[:, 0].astype(np.float64)
    for j in range(1, call.row_mult):
        swt += w[:, j]
    return sv, swt


class KeyedSums:
    """Adds per-key (value, weight) sums of one chunk into an ``ExactSums`` with keys
    ``2k`` (values) and ``2k + 1`` (weights); keeps its index caches between chunks."""

    def __init__(self):
        self._cache = {}
        self._lin = np.zeros(0, np.int64)

    def _seg_offsets(self, n, K):
        """``(row // SEGMENT_ROWS) * K`` for rows 0..n-1 (chunks start at a segment boundary)."""
        c = self._cache.get(K)
        if c is None or c.shape[0] < n:
            c = self._cache[K] = (np.arange(n, dtype=np.int64) >> _SEGMENT_SHIFT) * K
        return c[:n]

    def _cell_keys(self, span, K):
        """``arange(span) % K``: the key of each (segment, key) cell (cached)."""
        c = self._cache.get(("cells", K))
        if c is None or c.shape[0] < span:
            c = self._cache[("cells", K)] = np.arange(span, dtype=np.int64) % K
        return c[:span]

    def add(self, sums, n, out, call, keep, keys, K, *, omit, per_column=False, counts=None):
        """Add one chunk's per-key sums.

        ``out``/``call``: the chunk's per-sample values and kernel call; ``keep``: rows
        that count (None: all); ``keys``: each row's key (< ``K``); ``omit``: NaN values
        are left out (``nan_policy="omit"``); ``per_column``: multi-label, one key per
        column; ``counts``: the rows per key of this chunk, when known (with every weight
        1, they are the weight sums: exact integers, whatever the segments).
        """
        if (counts is not None and not per_column and call.row_mult == 1 and keep is None
                and not omit and not call.weighted and keys.dtype == np.int64):
            if n == 0:
                return
            if self._lin.shape[0] < n:
                self._lin = np.empty(n, np.int64)
            lin = self._lin[:n]
            np.add(self._seg_offsets(n, K), keys, out=lin)
            self._segment_add(sums, lin, out, None, K, counts=counts)
            return
        if per_column:
            self._add_per_column(sums, n, out, call, keep, K, omit)
            return
        v, w = row_values(out, call, n)
        lin = self._seg_offsets(n, K) + keys
        sel = keep
        if omit:
            fin = ~np.isnan(v)
            sel = fin if sel is None else sel & fin
        if sel is not None:
            lin, v = lin[sel], v[sel]
            w = None if w is None else w[sel]
        self._segment_add(sums, lin, v, w, K)

    def _add_per_column(self, sums, n, out, call, keep, K, omit):
        """Multi-label: one key per column, added in slabs of rows (whole segments) so
        that the index, mask and weight arrays stay small whatever the chunk size."""
        m = call.row_mult
        v2 = out.reshape(n, m)
        w2 = call.weights().reshape(n, m) if call.weighted else None
        for a in range(0, n, _SLAB_ROWS):
            b = min(n, a + _SLAB_ROWS)
            v, lin = v2[a:b], self._column_cells(b - a, m, K)
            w = None if w2 is None else w2[a:b]
            sel = None
            if keep is not None:
                sel = np.repeat(keep[a:b], m).reshape(b - a, m)
            if omit:
                fin = ~np.isnan(v)
                sel = fin if sel is None else sel & fin
            if sel is None and w is None:
                # every weight 1: the weight sum of column j is the slab's row count
                self._segment_add(sums, lin, v.reshape(-1), None, K,
                                  counts=np.full(m, b - a, np.int64))
            elif sel is None:
                self._segment_add(sums, lin, v.reshape(-1), w.reshape(-1), K)
            else:
                self._segment_add(sums, lin[sel.reshape(-1)], v[sel],
                                  None if w is None else w[sel], K)

    def _column_cells(self, rows, m, K):
        """``(row // SEGMENT_ROWS) * K + column`` of a slab's values in row-major order."""
        key = ("columns", m, K)
        c = self._cache.get(key)
        if c is None:
            c = self._cache[key] = (self._seg_offsets(_SLAB_ROWS, K)[:, None]
                                    + np.arange(m)[None, :]).reshape(-1)
        return c[:rows * m]

    def _segment_add(self, sums, lin, v, w, K, counts=None):
        """Sum ``v`` and ``w`` (None: 1) per (segment, key) in row order, then add exactly.
        ``counts`` (rows per key, with ``w`` None): the weight sums, no second bincount."""
        if lin.size == 0:
            return
        span = int(lin[-1] // K + 1) * K
        if span <= max(4 * lin.size, _DENSE_CELLS):
            idx, size = lin, span
            keys = self._cell_keys(span, K)
        else:  # many keys (groups): only the (segment, key) pairs present
            uniq, idx = np.unique(lin, return_inverse=True)
            size, keys = uniq.size, uniq % K
        sv = np.bincount(idx, weights=v, minlength=size)
        nzv = sv != 0
        if counts is not None:
            kw = np.flatnonzero(counts)
            swt, wkeys = counts[kw].astype(np.float64), kw
        else:
            swt = np.bincount(idx, weights=w, minlength=size)
            if w is None:
                swt = swt.astype(np.float64)
            nzw = swt != 0
            swt, wkeys = swt[nzw], keys[nzw]
        sums.add(np.concatenate([sv[nzv], swt]),
                 np.concatenate([2 * keys[nzv], 2 * wkeys + 1]))
