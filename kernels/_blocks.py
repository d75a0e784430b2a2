"""The deterministic block reduction every backend follows, bit for bit.

Rows are cut into blocks of ``block_rows`` rows counted from row 0 of the whole
input. Inside a block, contributions go round-robin into ``LANES`` float64
accumulators (lane ``k`` takes the rows whose index *within the block* is
``k mod LANES``), each summed left to right; the lanes are then added left to
right (``((a0 + a1) + a2) + ...``). The lanes let a compiler vectorise the sum
without reassociating it. No FMA contraction is allowed in these sums.

Block partials are combined with :func:`math.fsum` (correctly rounded exact sum),
so the total depends neither on the thread count nor on the order in which
blocks, or chunks made of whole blocks, are combined.
"""

import math

import numpy as np

LANES = 8
BLOCK_ELEMS = 16384  # about 64 KiB of float32 logits per block: one L2-resident unit of work

CLIP_NONE = 0
CLIP_EPS = 1
CLIP_KERAS2 = 2
CLIP_TORCH = 3

# element-wise operations of ``elementwise`` (scipy.special semantics)
EW_XLOGY = 0
EW_REL_ENTR = 1
EW_KL_DIV = 2


def block_rows_for(n_cols):
    """Rows per block for rows of ``n_cols`` elements (a multiple of LANES)."""
    return max(LANES, (BLOCK_ELEMS // max(int(n_cols), 1)) // LANES * LANES)


def n_blocks(n_rows, block_rows):
    return -(-int(n_rows) // int(block_rows))


def block_sum(c):
    """Reference sum of one block's float64 contributions, in the contract's order."""
    c = np.asarray(c, dtype=np.float64).ravel()
    pad = (-c.size) % LANES
    lanes = np.concatenate([c, np.zeros(pad)]).reshape(-1, LANES)
    acc = np.add.accumulate(lanes, axis=0)[-1] if lanes.size else np.zeros(LANES)
    s = acc[0]
    for k in range(1, LANES):
        s = s + acc[k]
    return float(s)


def block_sums(c, block_rows):
    """:func:`block_sum` of every block of ``c`` (vectorised over blocks)."""
    c = np.asarray(c, dtype=np.float64).ravel()
    nb = n_blocks(c.size, block_rows)
    if nb == 0:
        return np.zeros(0)
    per = -(-block_rows // LANES) * LANES
    buf = np.zeros((nb, per))
    full = c.size // block_rows
    buf[:full, :block_rows] = c[: full * block_rows].reshape(full, block_rows)
    tail = c[full * block_rows:]
    if tail.size:
        buf[full, : tail.size] = tail
    with np.errstate(invalid="ignore"):  # inf + -inf is NaN: IEEE, as in every backend
        acc = np.add.accumulate(buf.reshape(nb, per // LANES, LANES), axis=1)[:, -1, :]
        s = acc[:, 0].copy()
        for k in range(1, LANES):
            s = s + acc[:, k]
    return s


def combine(partials):
    """Correctly rounded sum of block partials (order-independent).

    Non-finite partials follow IEEE addition instead (inf + -inf is NaN), which
    is order-independent too.
    """
    p = np.asarray(partials, dtype=np.float64).ravel()
    if not np.isfinite(p).all():
        with np.errstate(invalid="ignore"):
            return float(np.sum(p[~np.isfinite(p)]))
    return math.fsum(p.tolist())
