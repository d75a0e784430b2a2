"""Streaming, mergeable, exact loss accumulation: :class:`LossAccumulator`.

Why it is exact
---------------
A public loss reduces with the kernels' deterministic block reduction
(``fastloss.kernels._blocks``): rows are cut into blocks of ``B = block_rows_for(C)``
rows counted from row 0 of the whole input, each block gives a float64 partial
(lanes summed in a fixed order), and the partials are combined by a correctly
rounded exact sum (``math.fsum``). So the mean of a dump only depends on the
*multiset of block partials*. A :class:`LossAccumulator` knows the global row of
every chunk it is fed (``start_row`` / ``row_offset``), and for every chunk:

* the whole blocks inside the chunk are computed by the kernel with block size ``B``
  on exactly those rows: their partials are the in-memory call's;
* a chunk edge that falls inside a block leaves a *fragment*: the kernel computes its
  per-row float64 contributions (``block_rows=1``: ``lp[i] = c_i``, ``wp[i] = w_i``)
  and the accumulator keeps them, keyed by the global block index, until the block
  is complete (or, for the last block of the dump, until :meth:`result`); then
  :func:`~fastloss.kernels._blocks.block_sum` (the contract's lane order) gives the
  block partial the kernel would have produced for the whole block;
* completed partials go into an :class:`ExactSums`: an exact fixed-point integer
  (every finite float64 is an integer multiple of ``2**-1126``) kept in 32-bit limbs.
  Exact addition is associative and commutative, so the state does not depend on the
  chunking or on the order of :meth:`LossAccumulator.merge` calls, and the final value
  (the exact sum rounded once) is what ``math.fsum`` returns for the same partials.

Any split into chunks, fed or merged in any order, therefore gives the bitwise-same
result as one in-memory call of the public function.
"""

import base64
import copy

import numpy as np

from fastloss.losses._run import EMPTY, _overflow_shift, _rescaled, finish
from fastloss._validation import as_float_array
from fastloss.losses._calls import RowLayout
from fastloss.losses.registry import LOSSES, loss_name, loss_options, options_json
from fastloss.evaluation.exact import ExactSums
from fastloss.kernels import block_sum

__all__ = ["LossAccumulator"]

# --------------------------------------------------------------------------- kernel calls

def _prepare(name, o, y_true, y_pred, sample_weight, check_inputs=True):
    """The public function's KernelCall (``LOSSES[name].prepare``) for one chunk, and the
    chunk's number of rows along axis 0.

    ``check_inputs=False`` (``fastloss.evaluate``, which checks and counts bad rows itself)
    skips the [0, 1] checks of probabilities and targets and takes int64 labels as they are.
    """
    x, _ = as_float_array(y_pred, "y_pred", keep_half=True)  # half: read by the kernels
    spec = LOSSES[name]
    if not spec.has_class_axis:
        if x.ndim == 0:
            raise ValueError("y_pred must have a leading row axis; got a 0-d array")
    else:  # checked before the inputs, as the layout decides how they are read
        rows = RowLayout(x, o["axis"])
        if x.ndim < 2 or rows.axis == 0:
            raise ValueError(f"y_pred has shape {x.shape} with its class axis {rows.axis}; "
                             "streaming needs a leading row axis (axis 0) besides the class "
                             "axis")
    call = spec.prepare(y_true, x, sample_weight=sample_weight, trusted=not check_inputs, **o)
    return call, int(x.shape[0])


# --------------------------------------------------------------------------- accumulator


def _b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _unb64(s):
    return np.frombuffer(base64.b64decode(s), dtype="<f8").astype(np.float64)


def _as_row(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {v!r}")
    return int(v)


class LossAccumulator:
    r"""Streaming, mergeable, exact state of one loss over a dataset fed in chunks.

    Whatever the chunk sizes and in whatever order accumulators are merged, :meth:`result`
    is bitwise the public function's value on the whole dataset in memory.

    Parameters
    ----------
    loss : str or callable
        A public loss (``"sparse_categorical_cross_entropy"``, ``"categorical_cross_entropy"``,
        ``"binary_cross_entropy"``, ``"kl_divergence"``, ``"mean_squared_error"``) or the
        function itself.
    start_row : int, default 0
        Global row (along axis 0 of ``y_pred``) of the first chunk fed without ``row_offset``.
    **options
        The function's keywords (``from_logits``, ``class_weight``, ``clip``, ``nan_policy``,
        ``reduction='mean'`` or ``'sum'``, ...); ``sample_weight`` is given per chunk.

    Raises
    ------
    ValueError
        An unknown loss, ``reduction='none'``, a bad ``nan_policy``/``n_threads``/``start_row``.
    TypeError
        An option the function does not take.

    See Also
    --------
    fastloss.evaluate : the whole pass over files, built on accumulators.
    ExactSums : the exact sums inside.

    Notes
    -----
    Rows are numbered along axis 0 of ``y_pred`` over the whole dataset; ``update`` places
    its chunk at ``row_offset`` if given, else after the previous chunk. An accumulator may
    cover any set of disjoint row ranges (feeding a row twice is an error). The public
    functions sum fixed blocks of rows counted from row 0; an accumulator computes the
    whole blocks inside a chunk with the kernel, keeps the per-row contributions of a block
    cut by a chunk edge until the block is complete, and adds block partials exactly (an
    integer of 2560 bits), so chunking and merge order cannot change a bit. Shards:
    ``a`` fed rows ``[0, k)`` merged with ``b = LossAccumulator(..., start_row=k)`` fed
    ``[k, n)`` gives the whole dataset's value; :meth:`result` refuses a state with a hole.
    The state is small and :meth:`state_dict` is JSON (exact, for checkpoints).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> rng = np.random.default_rng(0)
    >>> y, x = rng.integers(0, 3, 1000), rng.standard_normal((1000, 3))
    >>> acc = fastloss.LossAccumulator("sparse_categorical_cross_entropy", from_logits=True)
    >>> for a in range(0, 1000, 300):
    ...     _ = acc.update(y[a:a + 300], x[a:a + 300])
    >>> bool(acc.result() == fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True))
    True
    """

    _FORMAT = "fastloss.LossAccumulator"
    _VERSION = 1

    def __init__(self, loss, *, start_row=0, **options):
        self.loss = loss_name(loss)
        self.options = loss_options(self.loss, options)
        self._options_json = options_json(self.options)
        self.start_row = _as_row(start_row, "start_row")
        self._next = self.start_row
        self._sums = ExactSums(2)  # key 0: sum of w*l, key 1: sum of w
        self._frags = {}  # global block -> sorted list of (pos, c, w)
        self._ranges = []  # sorted disjoint [start, stop) rows (axis 0 of y_pred)
        self._layout = None  # tail shape, dtypes, row multiplicity, block size

    # ------------------------------------------------------------------ feeding
    def update(self, y_true, y_pred, sample_weight=None, *, row_offset=None):
        """Add a chunk of rows; returns ``self``.

        Parameters
        ----------
        y_true, y_pred, sample_weight : array_like
            The chunk, as the public function takes them (validated the same way;
            messages name the chunk's first row).
        row_offset : int, optional
            Global row of ``y_pred[0]``; default: right after the previous chunk.

        Returns
        -------
        LossAccumulator
            ``self``.

        Raises
        ------
        ValueError
            Rows fed twice, a chunk whose classes or dtype differ from earlier chunks,
            or the public function's checks.
        """
        self._feed(y_true, y_pred, sample_weight, row_offset)
        return self

    def feed(self, y_true, y_pred, sample_weight=None, *, row_offset=None, out=None,
             trusted=False):
        """Add a chunk of rows and return ``(values, call)``: the per-row values
        (``reduction="none"`` of the chunk, in the kernel's row order) and the chunk's
        validated kernel call (its ``weights()``, ``weighted`` and ``row_mult``).

        ``out``: a buffer to reuse for the values (replaced if its shape or dtype
        differs). ``trusted=True`` is for a caller that screened the inputs itself
        (``fastloss.evaluate``, which counts bad rows): the [0, 1] checks of
        probabilities and targets are skipped and int64 labels are taken as they are.
        """
        return self._feed(y_true, y_pred, sample_weight, row_offset, want_out=True,
                          check_inputs=not trusted, out=out)

    def _feed(self, y_true, y_pred, sample_weight, row_offset, want_out=False,
              check_inputs=True, out=None):
        r0 = self._next if row_offset is None else _as_row(row_offset, "row_offset")
        try:
            p, n_lead = _prepare(self.loss, self.options, y_true, y_pred, sample_weight,
                                 check_inputs)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{exc} (in the chunk of rows starting at row {r0})") from None
        self._check_layout(p)
        self._claim(r0, r0 + n_lead)
        if not want_out:
            out = EMPTY.astype(p.dtype)
        elif out is None or out.shape != (p.n_rows,) or out.dtype != p.dtype:
            out = np.empty(p.n_rows, dtype=p.dtype)
        n, B = p.n_rows, p.block_rows
        g = r0 * p.row_mult
        scaled = _Rescaler(self, y_true, y_pred, sample_weight, check_inputs, p)
        if n:
            h = min(n, (-g) % B)
            t = h + (n - h) // B * B
            if h:
                self._fragment(p, 0, h, g, out, scaled)
            if t > h:
                nb = (t - h) // B
                lp, wp = np.zeros(nb), np.zeros(nb)
                with np.errstate(over="ignore"):
                    p.forward(h, t, out[h:t] if want_out else out, lp, wp, block_rows=B)
                k = 0
                if not (np.isfinite(lp).all() and np.isfinite(wp).all()) and scaled.call():
                    # weights near 1e308 overflowed the partials: the same blocks with the
                    # weights times 2**-k, added back times 2**k (both exact)
                    k = scaled.k
                    scaled.call().forward(h, t, EMPTY.astype(p.dtype), lp, wp, block_rows=B)
                self._sums.add(np.concatenate([lp, wp]), np.repeat(np.array([0, 1]), nb),
                               shift=k)
            if t < n:
                self._fragment(p, t, n, g, out, scaled)
        self._next = r0 + n_lead
        return out, p

    def _fragment(self, p, a, b, g, out, scaled):
        c, w = np.zeros(b - a), np.zeros(b - a)
        with np.errstate(over="ignore"):
            p.forward(a, b, out[a:b] if out.shape[0] else out, c, w, block_rows=1)
        k = 0
        if not (np.isfinite(c).all() and np.isfinite(w).all()) and scaled.call():
            k = scaled.k
            scaled.call().forward(a, b, EMPTY.astype(p.dtype), c, w, block_rows=1)
        B = p.block_rows
        self._add_fragment((g + a) // B, (g + a) % B, c, w, k)

    def _add_fragment(self, block, pos, c, w, k=0):
        frs = self._frags.setdefault(int(block), [])
        end = pos + c.shape[0]
        for f in frs:
            if pos < f[0] + f[1].shape[0] and f[0] < end:  # pragma: no cover - _claim prevents it
                raise ValueError(f"rows of block {block} were added twice")
        frs.append((int(pos), c, w, int(k)))
        frs.sort(key=lambda f: f[0])
        if sum(f[1].shape[0] for f in frs) == self._layout["block_rows"]:
            del self._frags[int(block)]
            self._add_block(frs, sum(f[1].shape[0] for f in frs))

    def _add_block(self, frs, size, sums=None):
        """Add the block partials of fragments ``frs`` (rows outside them weigh 0) to
        ``sums``: contributions kept at different scales ``2**-k`` are brought to the
        smallest one, and a lane sum that overflows is redone at a smaller scale, exactly
        as the in-memory call's rescaled weights would give it."""
        sums = self._sums if sums is None else sums
        k = max(f[3] for f in frs)
        c, w = np.zeros(size), np.zeros(size)
        for p, cc, ww, kk in frs:
            c[p:p + cc.shape[0]] = np.ldexp(cc, kk - k)
            w[p:p + ww.shape[0]] = np.ldexp(ww, kk - k)
        for key, v in enumerate((c, w)):
            with np.errstate(over="ignore"):
                s = block_sum(v)
            extra = 0
            if not np.isfinite(s) and np.isfinite(v).all():
                extra = _overflow_shift(np.abs(v))
                s = block_sum(np.ldexp(v, -extra))
            sums.add([s], [key], shift=k + extra)

    def _check_layout(self, p):
        tail = _tail(p)
        lay = {"tail": list(tail), "dtype": p.dtype.str, "result_dtype": p.result_dtype.str,
               "row_mult": p.row_mult, "block_rows": p.block_rows}
        if self._layout is None:
            self._layout = lay
        elif lay != self._layout:
            old = self._layout
            if old["tail"] != lay["tail"]:
                raise ValueError(f"y_pred chunk has shape (n, {', '.join(map(str, tail))}) but "
                                 f"earlier chunks had (n, {', '.join(map(str, old['tail']))}): "
                                 "every chunk needs the same number of classes")
            raise ValueError(f"y_pred chunk has dtype {p.dtype} (result {p.result_dtype}) but earlier "
                             f"chunks had {np.dtype(old['dtype'])} (result "
                             f"{np.dtype(old['result_dtype'])}); every chunk needs the same dtype")

    def _claim(self, a, b):
        if a == b:
            return
        for s, e in self._ranges:
            if a < e and s < b:
                raise ValueError(f"rows [{max(a, s)}, {min(b, e)}) were already added to this "
                                 "accumulator")
        self._ranges = _union(self._ranges + [[a, b]])

    # ------------------------------------------------------------------ combining
    def _compatible(self, other):
        if not isinstance(other, LossAccumulator):
            raise TypeError(f"can only merge a LossAccumulator, got {type(other).__name__}")
        mine, theirs = _merge_key(self._options_json), _merge_key(other._options_json)
        if other.loss != self.loss or mine != theirs:
            raise ValueError("cannot merge accumulators of different losses or options: "
                             f"{self.loss}{mine} vs {other.loss}{theirs}")
        if self._layout and other._layout and self._layout != other._layout:
            raise ValueError(f"cannot merge accumulators of different inputs: {self._layout} vs "
                             f"{other._layout}")

    def merge(self, other):
        """Add ``other``'s rows (disjoint from this one's) to this accumulator; returns ``self``.

        Merging is exact, so any order of merges gives the same state.

        Raises
        ------
        ValueError
            A different loss, options or input layout, or rows held by both.
        TypeError
            ``other`` is not a LossAccumulator.
        """
        self._compatible(other)
        for a, b in other._ranges:
            for s, e in self._ranges:
                if a < e and s < b:
                    raise ValueError(f"cannot merge: both accumulators hold rows "
                                     f"[{max(a, s)}, {min(b, e)})")
        if self._layout is None:
            self._layout = copy.deepcopy(other._layout)
        self._ranges = _union(self._ranges + [list(r) for r in other._ranges])
        self._sums.merge(other._sums)
        for block, frs in other._frags.items():
            for pos, c, w, k in frs:
                self._add_fragment(block, pos, c.copy(), w.copy(), k)
        self._next = max(self._next, other._next)
        return self

    def copy(self):
        return LossAccumulator.from_state_dict(self.state_dict())

    # ------------------------------------------------------------------ results
    @property
    def row_ranges(self):
        """The covered rows, as sorted disjoint ``(start, stop)`` pairs."""
        return [tuple(r) for r in self._ranges]

    @property
    def n_rows(self):
        return sum(b - a for a, b in self._ranges)

    def sum_and_weight(self):
        """The exact float64 ``(sum of w*l, sum of w)`` that the public mean divides
        (+-inf where a sum overflows float64)."""
        sums = self._all_sums()
        return sums.value(0), sums.value(1)

    def _all_sums(self):
        if len(self._ranges) > 1:
            (_, a), (b, _) = self._ranges[0], self._ranges[1]
            raise ValueError(f"rows [{a}, {b}) are missing: merge the accumulator that holds "
                             "them first (covered: "
                             + ", ".join(f"[{s}, {e})" for s, e in self._ranges) + ")")
        sums = self._sums.copy()
        for frs in self._frags.values():
            self._add_block(frs, max(f[0] + f[1].shape[0] for f in frs), sums)
        return sums

    def result(self):
        """The loss over every row added, exactly as the public function returns it."""
        sums = self._all_sums()
        # a mean whose sums overflow float64 (weights near 1e308) divides both sums scaled by
        # the same 2**-k, as the in-memory call does with its rescaled weights
        k = sums.overflow_shift([0, 1]) if self.options["reduction"] == "mean" else 0
        rdt = np.dtype(self._layout["result_dtype"]) if self._layout else np.dtype(np.float64)
        return finish((sums.value(0, k), sums.value(1, k)), self.options["reduction"], rdt, ())

    # ------------------------------------------------------------------ persistence
    def state_dict(self):
        """A JSON-serialisable snapshot (exact: floats are stored as their bytes)."""
        return {
            "format": self._FORMAT, "version": self._VERSION, "loss": self.loss,
            "options": self._options_json, "start_row": self.start_row, "next_row": self._next,
            "ranges": [list(r) for r in self._ranges], "layout": copy.deepcopy(self._layout),
            "sums": self._sums.state(),
            "fragments": [{"block": b, "pos": p, "c": _b64(c), "w": _b64(w), "k": k}
                          for b, frs in sorted(self._frags.items()) for p, c, w, k in frs],
        }

    @classmethod
    def from_state_dict(cls, state):
        if state.get("format") != cls._FORMAT or state.get("version") != cls._VERSION:
            raise ValueError(f"not a {cls._FORMAT} state (version {cls._VERSION})")
        new = cls(state["loss"], start_row=state["start_row"], **state["options"])
        new._next = int(state["next_row"])
        new._ranges = [list(map(int, r)) for r in state["ranges"]]
        new._layout = copy.deepcopy(state["layout"])
        new._sums = ExactSums.from_state(state["sums"])
        for f in state["fragments"]:
            new._frags.setdefault(int(f["block"]), []).append(
                (int(f["pos"]), _unb64(f["c"]), _unb64(f["w"]), int(f.get("k", 0))))
        for frs in new._frags.values():
            frs.sort(key=lambda f: f[0])
        return new

    def __repr__(self):
        return (f"LossAccumulator({self.loss!r}, rows={self.n_rows}, "
                f"ranges={self.row_ranges[:3]}{'...' if len(self._ranges) > 3 else ''})")


class _Rescaler:
    """The chunk's kernel call with its sample weights times ``2**-k`` (``k`` as the
    in-memory rescaling picks it from the chunk's weights), built on first use; None when
    the weights are not what overflowed (no weight above 1, or a non-finite one)."""

    def __init__(self, acc, y_true, y_pred, sample_weight, check_inputs, call):
        self._args = (acc, y_true, y_pred, sample_weight, check_inputs, call)
        self._call, self.k = None, None

    def call(self):
        if self.k is None:
            acc, y_true, y_pred, sw, check, call = self._args
            self.k = _overflow_shift(call.weights())

            def prepare(w):
                return _prepare(acc.loss, acc.options, y_true, y_pred, w, check)[0]
            self._call = _rescaled(prepare, sw, call) if self.k else None
        return self._call


def _tail(call):
    """The chunk's ``y_pred.shape[1:]`` (as the user laid it out)."""
    bs = tuple(int(v) for v in call.batch_shape)
    if call.layout is None:
        return bs[1:]
    ax = call.layout.axis
    return (bs[:ax] + (int(call.layout.n_cols),) + bs[ax:])[1:]


def _merge_key(opts):
    """The options that change the result (the backend and thread count do not)."""
    return {k: v for k, v in opts.items() if k not in ("backend", "n_threads")}


def _union(ranges):
    out = []
    for a, b in sorted(ranges):
        if a == b:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out
