# The fast path of the public losses (issue #16), included by _core.pyx after _kernels.pxi.
#
# One entry from Python per call for the common case: C-contiguous float32/float64 NumPy
# arrays, integer labels or same-shaped targets, no user clip / pos_weight / nan_policy='raise'
# (sparse CE takes a kernel clip (mode, eps) from the drop-ins)
# (label_smoothing, z_loss, class_weight, sample_weight of the batch's shape, ignore_index
# and nan_policy='omit' are taken: they are kernel arguments). Each ``fast_*`` entry
# validates shapes, dtypes and label ranges itself, runs the kernel (one thread and no
# OpenMP region below FAST_SERIAL_ELEMS), reduces the block partials and returns the
# public result. It returns None to *decline*: for anything it does not handle, and for
# every bad input, so the general path in fastloss.losses runs and raises its clear error.
# Same bits as the general path: the same kernel on the same blocks, a single block taken
# as is (fsum of one finite value is that value) and several combined by a correctly
# rounded sum (math.fsum's algorithm); non-finite partials, a zero exact sum (fsum's sign
# of zero differs between Python versions) and a zero weight sum decline.

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_FORMAT, PyBUF_STRIDES
from libc.stdlib cimport malloc, free
from libc.stdint cimport int32_t

import numpy as _np

cdef object _NDARRAY = _np.ndarray
cdef object _EMPTY = _np.empty
cdef object _F32 = _np.float32
cdef object _F64 = _np.float64

cdef enum:
    FT_NONE = 0
    FT_F32 = 1
    FT_F64 = 2
    FT_I64 = 3
    FT_I32 = 4
    RED_NONE = 0
    RED_SUM = 1
    RED_MEAN = 2
    FAST_STACK = 64          # block partials kept on the stack up to this many blocks
    FSUM_PARTIALS = 128      # non-overlapping partials of an exact double sum: <= ~40

# Below this many input elements (at most two blocks) a call runs on one thread without an
# OpenMP region: waking a second thread is not repaid by so little work, and its cost grows
# with the machine's load (tests/losses/test_fast.py checks the bits on both sides).
FAST_SERIAL_ELEMS = 1 << 15

cdef int _fast_default_threads = 1


def fast_configure(int default_threads):
    """Thread count of ``n_threads=None`` (``fastloss.refresh_config`` sets it)."""
    global _fast_default_threads
    if default_threads < 1:
        raise ValueError(f"default_threads must be positive, got {default_threads}")
    _fast_default_threads = default_threads


cdef struct View:
    Py_buffer b
    bint held
    int ft


cdef int _ft(const char *fmt, Py_ssize_t itemsize) noexcept:
    """The dtype code of a native-endian buffer format (FT_NONE: not handled)."""
    if fmt == NULL or fmt[0] == 0 or fmt[1] != 0:
        return FT_NONE  # byte-order prefixes and structured formats decline
    if fmt[0] == b'f' and itemsize == 4:
        return FT_F32
    if fmt[0] == b'd' and itemsize == 8:
        return FT_F64
    if (fmt[0] == b'l' or fmt[0] == b'q') and itemsize == 8:
        return FT_I64
    if (fmt[0] == b'i' or fmt[0] == b'l') and itemsize == 4:
        return FT_I32
    return FT_NONE


cdef bint _open(object o, View *v) except -1:
    """Export ``o`` if it is exactly an ndarray, C-contiguous, of a handled dtype."""
    cdef Py_ssize_t d, expect
    v.held = False
    if type(o) is not _NDARRAY:
        return False  # subclasses (masked arrays, matrices) and lists go the general way
    try:
        PyObject_GetBuffer(o, &v.b, PyBUF_FORMAT | PyBUF_STRIDES)
    except (ValueError, BufferError):  # datetimes and the like export no buffer
        return False
    v.held = True
    v.ft = _ft(v.b.format, v.b.itemsize)
    if v.ft == FT_NONE:
        return False
    expect = v.b.itemsize
    for d in range(v.b.ndim - 1, -1, -1):
        if v.b.shape[d] != 1 and v.b.strides[d] != expect:
            return False
        expect *= v.b.shape[d]
    return True


cdef inline void _close(View *v) noexcept:
    if v.held:
        PyBuffer_Release(&v.b)
        v.held = False


cdef inline Py_ssize_t _prod(const Py_ssize_t *shape, int nd) noexcept:
    cdef Py_ssize_t n = 1
    cdef int d
    for d in range(nd):
        n *= shape[d]
    return n


cdef inline bint _same_shape(const View *a, const View *b) noexcept:
    cdef int d
    if a.b.ndim != b.b.ndim:
        return False
    for d in range(a.b.ndim):
        if a.b.shape[d] != b.b.shape[d]:
            return False
    return True


cdef bint _real_in(object v, double lo, double hi, double *out):
    """A Python float or int in [lo, hi] (finite); False declines (np.float64, bools, ...:
    the general path converts or rejects them)."""
    if type(v) is not float and type(v) is not int:
        return False
    if not (lo <= v <= hi):
        return False
    out[0] = <double>v
    return True


cdef bint _class_weight(object cw, Py_ssize_t C, View *v) except -1:
    """A float64 class_weight of shape (C,), finite and non-negative; False declines."""
    if cw is None:
        return True
    if not _open(cw, v) or v.ft != FT_F64 or v.b.ndim != 1 or v.b.shape[0] != C:
        return False
    return _weights_ok(<const double *>v.b.buf, C)


cdef int _kernel_clip(object clip, double *eps):
    """A kernel clip ``(mode, eps)`` (the drop-ins' exact framework clip), CLIP_NONE for
    None, -1 to decline (a user's ``clip=``: the general path resolves it)."""
    if clip is None:
        return CLIP_NONE
    if type(clip) is not tuple or len(clip) != 2:
        return -1
    mode, e = clip
    if type(mode) is not int or type(e) is not float or not (0.0 < e < 0.5):
        return -1
    if mode != CLIP_EPS and mode != CLIP_KERAS2 and mode != CLIP_TORCH:
        return -1
    eps[0] = e
    return mode


cdef int _reduction(object r):
    if r == "mean":
        return RED_MEAN
    if r == "sum":
        return RED_SUM
    if r == "none":
        return RED_NONE
    return -1


cdef int _threads(object n):
    """Resolved n_threads, or 0 to decline (the general path validates)."""
    if n is None:
        return _fast_default_threads
    if type(n) is int and 0 < n <= 65536:
        return <int>n
    return 0


cdef int _nan_omit(object p):
    """1 for 'omit', 0 for 'propagate', -1 otherwise ('raise' scans in Python)."""
    if p == "propagate":
        return 0
    if p == "omit":
        return 1
    return -1


cdef bint _last_axis(object axis, int ndim):
    return type(axis) is int and (axis == -1 or axis == ndim - 1)


cdef bint _unit(const View *v, Py_ssize_t n) noexcept:
    """All of a probability array lies in [0, 1] (NaN passes, as check_unit_interval)."""
    if v.ft == FT_F32:
        return _first_outside(<const float *>v.b.buf, n) < 0
    return _first_outside(<const double *>v.b.buf, n) < 0


cdef bint _weights_ok(const double *w, Py_ssize_t n) noexcept nogil:
    """Finite and non-negative (check_weights)."""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        bad |= not (w[i] >= 0.0 and w[i] - w[i] == 0.0)
    return bad == 0


cdef bint _sample_weight(object sw, const Py_ssize_t *shape, int nd, View *v) except -1:
    """A float64 sample_weight of exactly ``shape``, valid; False declines."""
    cdef int d
    if sw is None:
        return True
    if not _open(sw, v) or v.ft != FT_F64 or v.b.ndim != nd:
        return False
    for d in range(nd):
        if v.b.shape[d] != shape[d]:
            return False
    return _weights_ok(<const double *>v.b.buf, _prod(shape, nd))


cdef bint _exact_sum(const double *p, Py_ssize_t n, double *result) noexcept nogil:
    """Correctly rounded sum of finite ``p`` (CPython's math.fsum, msum with the half-even
    fix-up), so the bits equal ``_blocks.combine``'s. False: an intermediate overflow, too
    many partials or an exact zero (left to the general path)."""
    cdef double ps[FSUM_PARTIALS]
    cdef Py_ssize_t i, j, k, m = 0
    cdef double x, y, t, hi, yr, lo = 0.0
    for k in range(n):
        x = p[k]
        i = 0
        for j in range(m):
            y = ps[j]
            if fabs(x) < fabs(y):
                t = x
                x = y
                y = t
            hi = x + y
            yr = hi - x
            lo = y - yr
            if lo != 0.0:
                ps[i] = lo
                i += 1
            x = hi
        m = i
        if x != 0.0:
            if not _finite(x) or m >= FSUM_PARTIALS:
                return False
            ps[m] = x
            m += 1
    if m == 0:
        return False
    m -= 1
    hi = ps[m]
    lo = 0.0
    while m > 0:
        x = hi
        m -= 1
        y = ps[m]
        hi = x + y
        yr = hi - x
        lo = y - yr
        if lo != 0.0:
            break
    if m > 0 and ((lo < 0.0 and ps[m - 1] < 0.0) or (lo > 0.0 and ps[m - 1] > 0.0)):
        y = lo * 2.0
        x = hi + y
        yr = x - hi
        if y == yr:
            hi = x
    result[0] = hi
    return True


def _exact_sum_check(const double[::1] p):
    """_exact_sum of ``p`` (tests hold it to math.fsum), None where it declines."""
    cdef double r
    if p.shape[0] == 0 or not _exact_sum(&p[0], p.shape[0], &r):
        return None
    return r


cdef object _scalar(int ft, double v):
    return _F32(v) if ft == FT_F32 else _F64(v)


cdef object _run_reduce(Args *a, const View *x, int red, int nt, object src, int nd):
    """Run a loss kernel over all blocks and return the public value (None: decline);
    per-sample values come back in the shape of ``src.shape[:nd]``."""
    cdef double lp_s[FAST_STACK]
    cdef double wp_s[FAST_STACK]
    cdef double *lp = lp_s
    cdef double *wp = wp_s
    cdef Py_ssize_t nb = (a.n + a.block_rows - 1) // a.block_rows
    cdef double total, wsum
    cdef View ov
    cdef object out = None
    ov.held = False
    if red == RED_NONE:
        out = _EMPTY(src.shape[:nd], dtype=_F32 if x.ft == FT_F32 else _F64)
        _open(out, &ov)
        a.out = ov.b.buf
    elif nb > FAST_STACK:
        lp = <double *>malloc(2 * nb * sizeof(double))
        if lp == NULL:
            raise MemoryError()
        wp = lp + nb
    if red != RED_NONE:
        a.lp = lp
        a.wp = wp
    try:
        with nogil:
            if x.ft == FT_F32:
                _run(a, <const float *>x.b.buf, nt)
            else:
                _run(a, <const double *>x.b.buf, nt)
        if a.bad_label[0]:
            return None
        if red == RED_NONE:
            return out
        if nb == 1:
            total = lp[0]
            wsum = wp[0]
        elif not (_exact_sum(lp, nb, &total) and _exact_sum(wp, nb, &wsum)):
            return None
        if red == RED_SUM:
            return _scalar(x.ft, total)
        if wsum == 0.0:
            return None  # the general path warns and returns NaN
        if (a.sw != NULL or a.cw != NULL or a.pw != NULL) and not (
                _finite(total) and _finite(wsum)):
            return None  # weighted sums that overflow: the general path rescales the weights
        return _scalar(x.ft, total / wsum)
    finally:
        _close(&ov)
        if lp != lp_s:
            free(lp)


cdef inline int _serial(Py_ssize_t elems, int nt) noexcept:
    return 1 if elems < FAST_SERIAL_ELEMS else nt


cdef inline Py_ssize_t _block_rows(Py_ssize_t C) noexcept:
    """kernels._blocks.block_rows_for (16384 elements, a multiple of LANES rows)."""
    return max(<Py_ssize_t>LANES, (16384 // max(C, <Py_ssize_t>1)) // LANES * LANES)


def fast_sparse_ce(y_true, y_pred, from_logits, axis, ignore_index, class_weight,
                   label_smoothing, z_loss, sample_weight, clip, reduction, nan_policy,
                   n_threads):
    """sparse_categorical_cross_entropy in one call, or None to decline."""
    cdef View x, y, sw, cw
    cdef Args a
    cdef int bad, red = _reduction(reduction), nt = _threads(n_threads)
    cdef int omit = _nan_omit(nan_policy)
    cdef bint has_ii = ignore_index is not None
    cdef int64_t ii = 0, yi
    cdef int64_t *y64 = NULL
    cdef const int32_t *y32
    cdef Py_ssize_t N, C, i, nd
    cdef double ls, zl, ceps = 0.0
    cdef int cmode = _kernel_clip(clip, &ceps)
    if (red < 0 or nt == 0 or omit < 0 or cmode < 0
            or not _real_in(label_smoothing, 0.0, 1.0, &ls)
            or not _real_in(z_loss, 0.0, FL_INF, &zl) or zl == FL_INF
            or not (from_logits is True or from_logits is False)
            or (zl != 0.0 and from_logits is False)):  # the general path says why
        return None
    if has_ii:
        if type(ignore_index) is not int:
            return None
        try:
            ii = ignore_index
        except OverflowError:  # beyond int64: the general path says so
            return None
    x.held = y.held = sw.held = cw.held = False
    try:
        if not _open(y_pred, &x) or x.ft > FT_F64 or x.b.ndim < 2:
            return None
        nd = x.b.ndim - 1
        if not _last_axis(axis, x.b.ndim) or not _open(y_true, &y) or y.ft < FT_I64:
            return None
        if not (y.b.ndim == nd or (y.b.ndim == nd + 1 and y.b.shape[nd] == 1)):
            return None
        for i in range(nd):
            if y.b.shape[i] != x.b.shape[i]:
                return None
        N = _prod(x.b.shape, nd)
        C = x.b.shape[nd]
        if N == 0 or C == 0 or not _sample_weight(sample_weight, x.b.shape, nd, &sw):
            return None
        if not _class_weight(class_weight, C, &cw):
            return None
        if from_logits is False and not _unit(&x, N * C):
            return None
        if y.ft == FT_I32:  # the kernels take int64
            y64 = <int64_t *>malloc(N * sizeof(int64_t))
            if y64 == NULL:
                raise MemoryError()
            y32 = <const int32_t *>y.b.buf
            for i in range(N):
                y64[i] = y32[i]
        else:
            y64 = <int64_t *>y.b.buf
        with nogil:  # a bad label declines: check_labels names it
            bad = 0
            for i in range(N):
                yi = y64[i]
                bad |= (yi < 0) | (yi >= C)
            if bad and has_ii:
                bad = 0
                for i in range(N):
                    yi = y64[i]
                    bad |= ((yi < 0) | (yi >= C)) & (yi != ii)
        if bad:
            return None
        _init(&a, K_SPARSE, N, C, _block_rows(C), &bad)
        a.y = y64
        a.sw = <const double *>sw.b.buf if sw.held else NULL
        a.cw = <const double *>cw.b.buf if cw.held else NULL
        a.logits = from_logits is True
        a.ignore_index = ii
        a.has_ignore = has_ii
        a.ls = ls
        a.z = zl
        a.omit = omit == 1
        a.clip = cmode
        a.eps = ceps
        return _run_reduce(&a, &x, red, _serial(N * C, nt), y_pred, nd)
    finally:
        if y.held and y.ft == FT_I32:
            free(y64)
        _close(&x)
        _close(&y)
        _close(&sw)
        _close(&cw)


def fast_categorical_ce(y_true, y_pred, from_logits, axis, class_weight, label_smoothing,
                        sample_weight, clip, reduction, nan_policy, n_threads):
    """categorical_cross_entropy in one call, or None to decline."""
    cdef View x, t, sw, cw
    cdef Args a
    cdef int bad, red = _reduction(reduction), nt = _threads(n_threads)
    cdef int omit = _nan_omit(nan_policy)
    cdef Py_ssize_t N, C, nd
    cdef double ls
    if (red < 0 or nt == 0 or omit < 0 or clip is not None
            or not _real_in(label_smoothing, 0.0, 1.0, &ls)
            or not (from_logits is True or from_logits is False)):
        return None
    x.held = t.held = sw.held = cw.held = False
    try:
        if not _open(y_pred, &x) or x.ft > FT_F64 or x.b.ndim < 2:
            return None
        nd = x.b.ndim - 1
        if not _last_axis(axis, x.b.ndim) or not _open(y_true, &t) or t.ft != x.ft:
            return None
        if not _same_shape(&x, &t):
            return None
        N = _prod(x.b.shape, nd)
        C = x.b.shape[nd]
        if N == 0 or C == 0 or not _sample_weight(sample_weight, x.b.shape, nd, &sw):
            return None
        if not _class_weight(class_weight, C, &cw):
            return None
        if not _unit(&t, N * C) or (from_logits is False and not _unit(&x, N * C)):
            return None
        _init(&a, K_CAT, N, C, _block_rows(C), &bad)
        a.t = t.b.buf
        a.sw = <const double *>sw.b.buf if sw.held else NULL
        a.cw = <const double *>cw.b.buf if cw.held else NULL
        a.logits = from_logits is True
        a.ls = ls
        a.omit = omit == 1
        return _run_reduce(&a, &x, red, _serial(2 * N * C, nt), y_pred, nd)
    finally:
        _close(&x)
        _close(&t)
        _close(&sw)
        _close(&cw)


def fast_bce(y_true, y_pred, from_logits, pos_weight, label_smoothing, sample_weight, clip,
             reduction, nan_policy, n_threads):
    """binary_cross_entropy in one call, or None to decline."""
    cdef View x, z, sw
    cdef Args a
    cdef int bad, red = _reduction(reduction), nt = _threads(n_threads)
    cdef int omit = _nan_omit(nan_policy)
    cdef Py_ssize_t N
    cdef double ls
    if (red < 0 or nt == 0 or omit < 0 or pos_weight is not None or clip is not None
            or not _real_in(label_smoothing, 0.0, 1.0, &ls)
            or not (from_logits is True or from_logits is False)):
        return None
    x.held = z.held = sw.held = False
    try:
        if not _open(y_pred, &x) or x.ft > FT_F64 or x.b.ndim < 1:
            return None
        if not _open(y_true, &z) or z.ft != x.ft or not _same_shape(&x, &z):
            return None
        N = _prod(x.b.shape, x.b.ndim)
        if N == 0 or not _sample_weight(sample_weight, x.b.shape, x.b.ndim, &sw):
            return None
        if not _unit(&z, N) or (from_logits is False and not _unit(&x, N)):
            return None
        _init(&a, K_BCE, N, 1, _block_rows(1), &bad)
        a.t = z.b.buf
        a.sw = <const double *>sw.b.buf if sw.held else NULL
        a.logits = from_logits is True
        a.ls = ls
        a.omit = omit == 1
        return _run_reduce(&a, &x, red, _serial(N, nt), y_pred, x.b.ndim)
    finally:
        _close(&x)
        _close(&z)
        _close(&sw)


def fast_logsumexp(a_in, axis, b, keepdims, return_sign, n_threads):
    """logsumexp over the last axis or all of a C-contiguous array, or None to decline."""
    cdef View x, ov
    cdef Args a
    cdef int bad, nt = _threads(n_threads)
    cdef Py_ssize_t n_out, k, nd
    cdef object shape, out
    if b is not None or return_sign is not False or nt == 0 or not (
            keepdims is False or keepdims is True):
        return None
    x.held = ov.held = False
    try:
        if not _open(a_in, &x) or x.ft > FT_F64 or x.b.ndim < 1:
            return None
        nd = x.b.ndim
        if axis is None:
            n_out, k = 1, _prod(x.b.shape, nd)
            shape = (1,) * nd if keepdims is True else ()
        elif _last_axis(axis, nd):
            n_out, k = _prod(x.b.shape, nd - 1), x.b.shape[nd - 1]
            shape = a_in.shape[:nd - 1] + ((1,) if keepdims is True else ())
        else:
            return None
        if n_out == 0 or k == 0:
            return None
        out = _EMPTY(shape, dtype=_F32 if x.ft == FT_F32 else _F64)
        _open(out, &ov)
        _init(&a, K_LSE, n_out, k, max(<Py_ssize_t>1, 16384 // k), &bad)
        a.out = ov.b.buf
        nt = _serial(n_out * k, nt)
        with nogil:
            if x.ft == FT_F32:
                _run(&a, <const float *>x.b.buf, nt)
            else:
                _run(&a, <const double *>x.b.buf, nt)
        if len(shape) == 0:
            return out[()]  # the NumPy scalar, as the general path returns
        return out
    finally:
        _close(&x)
        _close(&ov)
