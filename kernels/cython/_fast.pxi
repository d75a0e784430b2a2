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
from cpython.ref cimport PyObject

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


# --------------------------------------------------------------------------- Keras loss objects
#
# fastloss.keras / .legacy loss objects called on plain NumPy (issue #16). The general path
# there does Keras's own steps in NumPy: log(clip(p)) in the compute dtype by np.log,
# smoothed targets and weights times the ignore_class mask in that dtype, per-sample values
# by the kernel, their float64 np.sum. These entries do the same steps in the same order
# (np.log's own inner loop, NumPy's pairwise summation and cast buffers), so the bits are
# the general path's; anything else declines (None).

cdef extern from *:
    """
    typedef void (*fl_ufunc_loop)(char **, const Py_ssize_t *, const Py_ssize_t *, void *);
    /* The leading fields of NumPy's PyUFuncObject (numpy/ufuncobject.h, the same from NumPy
       1.0 to 2.x): a ufunc's inner loops without building against NumPy's headers. */
    typedef struct {
        PyObject_HEAD
        int nin, nout, nargs, identity;
        fl_ufunc_loop *functions;
        void *const *data;
        int ntypes, reserved1;
        const char *name;
        const char *types;
    } fl_ufunc_head;
    """
    ctypedef void (*fl_ufunc_loop)(char **, const Py_ssize_t *, const Py_ssize_t *,
                                   void *) noexcept nogil
    ctypedef struct fl_ufunc_head:
        int nin
        int nout
        fl_ufunc_loop *functions
        void **data
        int ntypes
        const char *types

cdef fl_ufunc_loop _np_log_loop[2]  # np.log's own float32 / float64 loops
cdef void *_np_log_data[2]
cdef int _np_log_state = 0          # 0: not looked up yet, 1: usable, -1: not usable


cdef inline void _np_log(int k, void *src, void *dst, Py_ssize_t n) noexcept nogil:
    """np.log of ``n`` contiguous float32 (k = 0) or float64 (k = 1) values."""
    cdef char *args[2]
    cdef Py_ssize_t steps[2]
    args[0] = <char *>src
    args[1] = <char *>dst
    steps[0] = steps[1] = 4 if k == 0 else 8
    _np_log_loop[k](args, &n, steps, _np_log_data[k])


cdef bint _np_log_lookup() except -1:
    """Find np.log's float32/float64 loops (the first of each, as NumPy's type resolution
    takes) and check them against np.log itself on a probe of clipped probabilities."""
    cdef object uf = _np.log
    cdef fl_ufunc_head *u
    cdef int i, k
    cdef float[::1] qf
    cdef double[::1] qd
    if type(uf) is not _np.ufunc:
        return False
    u = <fl_ufunc_head *><PyObject *>uf
    names = uf.types
    if u.nin != 1 or u.nout != 1 or u.ntypes != len(names):
        return False
    for k, sig in enumerate(("f->f", "d->d")):
        i = names.index(sig) if sig in names else -1
        # the type numbers (NPY_FLOAT 11, NPY_DOUBLE 12) confirm the struct layout
        if i < 0 or u.types[2 * i] != 11 + k or u.types[2 * i + 1] != 11 + k:
            return False
        _np_log_loop[k] = u.functions[i]
        _np_log_data[k] = u.data[i]
    probe = _np.concatenate([_np.geomspace(1e-7, 1.0, 4099), _np.linspace(0.5, 1.0, 4099),
                             [_np.nan, 1e-7, 1.0 - 1e-7, 2.0, 1e30]])
    qf, qd = probe.astype(_F32), probe.copy()
    _np_log(0, &qf[0], &qf[0], qf.shape[0])  # in place, as the entries call it
    _np_log(1, &qd[0], &qd[0], qd.shape[0])
    return (_np.log(probe.astype(_F32)).tobytes() == _np.asarray(qf).tobytes()
            and _np.log(probe).tobytes() == _np.asarray(qd).tobytes())


cdef bint _np_log_ready() except -1:
    global _np_log_state
    if _np_log_state == 0:
        _np_log_state = -1
        if _np_log_lookup():
            _np_log_state = 1
    return _np_log_state == 1


def _np_log_check(x):
    """np.log of a 1-D float32/float64 array by the loop the Keras entries call, in place as
    they call it (tests hold it to np.log), None where that loop is not usable."""
    if not _np_log_ready():
        return None
    out = x.copy()
    cdef float[::1] of
    cdef double[::1] od
    if x.dtype == _F32:
        of = out
        if of.shape[0]:
            _np_log(0, &of[0], &of[0], of.shape[0])
    else:
        od = out
        if od.shape[0]:
            _np_log(1, &od[0], &od[0], od.shape[0])
    return out


cdef double _np_pairwise(const floating *a, Py_ssize_t n) noexcept nogil:
    """NumPy's pairwise sum of ``a`` taken as float64 (DOUBLE_pairwise_sum in numpy/_core/
    src/umath/loops_utils.h.src): ``np.sum(a.astype(np.float64))`` is ``0.0 +`` this."""
    cdef double r[8]
    cdef double res
    cdef Py_ssize_t i, j, n2
    if n < 8:
        res = -0.0
        for i in range(n):
            res += <double>a[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = <double>a[j]
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] += <double>a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += <double>a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _np_pairwise(a, n2) + _np_pairwise(a + n2, n - n2)


def _np_sum_check(const double[::1] a, bint from_f32=False):
    """_np_sum_as_f64 of ``a`` (tests hold it to np.sum)."""
    return _np_sum_as_f64(&a[0], a.shape[0], from_f32) if a.shape[0] else 0.0


cdef enum:
    RED_MEAN_SW = 3  # Keras 3's sum(w * v) / sum(w)


cdef int _keras_reduction(object r, bint weighted):
    """RED_MEAN, RED_SUM or RED_MEAN_SW of a Keras 3 / tf.keras reduction
    ('mean_with_sample_weight' without weights divides by the count); -1 declines."""
    if type(r) is not str:
        return -1
    if r == "mean_with_sample_weight":
        return RED_MEAN_SW if weighted else RED_MEAN
    if r == "sum_over_batch_size" or r == "auto" or r == "mean":
        return RED_MEAN
    return RED_SUM if r == "sum" else -1


cdef object _keras_scalar(int ft, double s, double d, int red):
    """``dtype.type(s)`` or ``dtype.type(0.0 if d == 0 else s / d)`` as the general path
    rounds it; a NaN declines (its sign and payload depend on which operand met which)."""
    if red != RED_SUM:
        s = 0.0 if d == 0.0 else s / d
    if s != s:
        return None
    return _scalar(ft, s)


cdef bint _keras_weights(const View *sw, int ft, const Args *a, double *w,
                         Py_ssize_t n) noexcept nogil:
    """Keras's weights as float64: ``sample_weight.astype(compute dtype)`` (1 without), times
    the ignore_class mask in the compute dtype; False where a float64 weight overflows
    float32 (NumPy warns of that: the general path's business)."""
    cdef Py_ssize_t i
    cdef const double *d = <const double *>sw.b.buf if sw.held else NULL
    cdef const float *f = <const float *>sw.b.buf if sw.held else NULL
    cdef float r
    cdef double v, m
    for i in range(n):
        if not sw.held:
            v = 1.0
        elif sw.ft == FT_F32:
            v = <double>f[i]
        elif ft == FT_F64:
            v = d[i]
        else:
            r = <float>d[i]
            if r - r != 0 and d[i] - d[i] == 0:
                return False
            v = <double>r
        if a.has_ignore:  # sw * mask in the dtype: a negative weight gives -0.0, inf NaN
            m = 0.0 if a.y[i] == a.ignore_index else 1.0
            v = <double>(<float>v * <float>m) if ft == FT_F32 else v * m
        w[i] = v
    return True


cdef double _np_sum_as_f64(const double *w, Py_ssize_t n, bint from_f32) noexcept nogil:
    """``np.sum(a, dtype=np.float64)`` of ``a`` (values ``w``): a float32 ``a`` is cast in
    NumPy's buffers of 8192 elements, each summed pairwise and added in turn."""
    cdef double s = 0.0
    cdef Py_ssize_t i
    if not from_f32:
        return 0.0 + _np_pairwise(w, n)
    for i in range(0, n, 8192):
        s = s + _np_pairwise(w + i, min(<Py_ssize_t>8192, n - i))
    return s


cdef void _keras_logclip(const floating *p, floating *out, Py_ssize_t n) noexcept nogil:
    """out = np.log(np.clip(p, eps, 1 - eps)) with Keras's eps = 1e-7, in p's dtype."""
    cdef floating lo = <floating>1e-7
    cdef floating hi = <floating>(1.0 - 1e-7)
    cdef floating v
    cdef Py_ssize_t i
    for i in range(n):
        v = p[i]
        out[i] = lo if v < lo else (hi if v > hi else v)  # NaN passes, as np.clip
    _np_log(0 if floating is float else 1, out, out, n)


cdef double _keras_rows(Args *a, const floating *x, floating *work, int pre, const void *rs,
                        const double *w, double *prod, int nt) noexcept nogil:
    """Per-row values of the kernel into ``work[:n]`` and the NumPy float64 sum of them
    (weights ``w``: of their products with ``w``, formed in ``prod``). ``pre``: 1 runs the
    kernel on log(clip(x)) (in work[n:]), 2 on x / rs[row] (Keras 3's renormalised
    probabilities), 0 on x."""
    cdef Py_ssize_t n = a.n, C = a.C, i, j
    cdef floating *tmp = work + n
    cdef const floating *r = <const floating *>rs
    if pre == 1:
        _keras_logclip(x, tmp, n * C)
        x = tmp
    elif pre == 2:
        for i in range(n):
            for j in range(C):
                tmp[i * C + j] = x[i * C + j] / r[i]
        x = tmp
    a.out = work
    _run(a, x, nt)
    if w == NULL:
        return 0.0 + _np_pairwise(work, n)
    for i in range(n):
        prod[i] = <double>work[i] * w[i]
    return 0.0 + _np_pairwise(prod, n)


cdef object _keras_run(Args *a, const View *x, int pre, const void *rs, int red,
                       const View *sw, bint keras2):
    """The entries' common part (weights, the kernel, Keras's reduction). With
    ignore_class, Keras's means divide by the rows kept (none kept: 0, tf.keras: NaN)."""
    cdef Py_ssize_t n = a.n, i, kept = 0
    cdef Py_ssize_t nw = 2 * n if sw.held or a.has_ignore else 0  # weights and products
    cdef Py_ssize_t nbytes = nw * 8 + (n + (n * a.C if pre else 0)) * x.b.itemsize
    cdef void *work
    cdef void *vals
    cdef double *w = NULL
    cdef View big
    cdef double s, d = <double>n
    cdef int nt = _serial(a.n * a.C, _fast_default_threads)
    big.held = False
    if nbytes >= (1 << 22):  # NumPy backs big arrays with huge pages: malloc's fresh pages
        _open(_EMPTY((nbytes + 7) // 8, dtype=_F64), &big)  # cost 15% at 80 MB in faults
        work = big.b.buf
    else:
        work = malloc(nbytes)
    if work == NULL:
        raise MemoryError()
    vals = <char *>work + nw * 8
    try:
        if nw:
            w = <double *>work
            if not _keras_weights(sw, x.ft, a, w, n):
                return None
        if a.has_ignore and red == RED_MEAN:
            for i in range(n):
                kept += a.y[i] != a.ignore_index
            if kept == 0 and keras2:
                return None  # tf.keras: 0 * inf = NaN, the general path's
            d = <double>kept
        with nogil:
            if x.ft == FT_F32:
                s = _keras_rows(a, <const float *>x.b.buf, <float *>vals, pre, rs, w, w + n,
                                nt)
            else:
                s = _keras_rows(a, <const double *>x.b.buf, <double *>vals, pre, rs, w,
                                w + n, nt)
            if red == RED_MEAN_SW:
                d = _np_sum_as_f64(w, n, x.ft == FT_F32)
        if a.bad_label[0]:
            return None
        return _keras_scalar(x.ft, s, d, red)
    finally:
        if big.held:
            _close(&big)
        else:
            free(work)


cdef bint _keras_sample_weight(object sample_weight, View *sw, Py_ssize_t n) except -1:
    """None, or a C-contiguous float32/float64 ``(n,)`` array (Keras casts it to the compute
    dtype; other shapes broadcast or squeeze: the general path)."""
    if sample_weight is None:
        return True
    return (_open(sample_weight, sw) and sw.ft <= FT_F64 and sw.b.ndim == 1
            and sw.b.shape[0] == n)


cdef bint _keras_pred(object y_pred, View *x, int want, object axis) except -1:
    """A C-contiguous (n, C) float ``y_pred`` (of FT ``want`` unless 0), n >= 1,
    2 <= C <= 2**24 (labels exact through Keras 3's cast to float32), class axis last."""
    if not _open(y_pred, x) or x.ft > FT_F64 or x.b.ndim != 2 or (want and x.ft != want):
        return False
    return (x.b.shape[0] >= 1 and 2 <= x.b.shape[1] <= 16777216
            and _last_axis(axis, 2))


def fast_keras_sparse(y_true, y_pred, from_logits, axis, reduction, int want,
                      sample_weight=None, ignore_class=None, bint keras2=False):
    """A Keras 3 (``keras2``: tf.keras 2) SparseCategoricalCrossentropy object's call, or
    None to decline. Labels int64/int32 of shape (n,) or (n, 1), all in [0, C) or equal
    to an int ``ignore_class``, all within +-2**24 then (Keras 3 compares them as float32);
    probabilities go through log(clip(p, 1e-7, 1 - 1e-7))."""
    cdef View x, y, sw
    cdef Args a
    cdef bint has_ic = ignore_class is not None
    cdef int bad, red = _keras_reduction(reduction, sample_weight is not None or has_ic)
    cdef Py_ssize_t N, C, i
    cdef int64_t *y64 = NULL
    cdef const int32_t *y32
    cdef int64_t yi, ic = 0
    if red < 0 or not (from_logits is True or from_logits is False):
        return None
    if has_ic:
        if type(ignore_class) is not int or not (-16777216 <= ignore_class <= 16777216):
            return None
        ic = ignore_class
    if from_logits is False and not _np_log_ready():
        return None
    x.held = y.held = sw.held = False
    try:
        if not _keras_pred(y_pred, &x, want, axis) or not _open(y_true, &y) or y.ft < FT_I64:
            return None
        N, C = x.b.shape[0], x.b.shape[1]
        if not (y.b.ndim == 1 or (y.b.ndim == 2 and y.b.shape[1] == 1)) or y.b.shape[0] != N:
            return None
        if not _keras_sample_weight(sample_weight, &sw, N):
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
        bad = 0
        for i in range(N):  # a bad label declines: the general path names it
            yi = y64[i]
            bad |= (yi < 0) | (yi >= C)
        if bad and has_ic:
            bad = 0
            for i in range(N):
                yi = y64[i]
                bad |= (((yi < 0) | (yi >= C)) & (yi != ic)) | (yi < -16777216) | (
                    yi > 16777216)
        if bad:
            return None
        _init(&a, K_SPARSE, N, C, _block_rows(C), &bad)
        a.y = y64
        a.logits = True
        a.has_ignore = has_ic
        a.ignore_index = ic
        return _keras_run(&a, &x, 0 if from_logits is True else 1, NULL, red, &sw, keras2)
    finally:
        if y.held and y.ft == FT_I32:
            free(y64)
        _close(&x)
        _close(&y)
        _close(&sw)


cdef class _Smoothed:
    """Keras's smoothed targets ``t * a + b``, two operations in t's dtype as NumPy does
    them (``smooth`` = (a, b), values of that dtype), in a buffer of their own."""
    cdef View v

    def __cinit__(self):
        self.v.held = False

    cdef bint make(self, const View *t, object smooth) except -1:
        cdef Py_ssize_t i, n = _prod(t.b.shape, t.b.ndim)
        cdef float af, bf
        cdef double ad, bd
        cdef const float *tf
        cdef const double *td
        if type(smooth) is not tuple or len(smooth) != 2:
            return False
        ad, bd = smooth
        _open(_EMPTY(n, dtype=_F32 if t.ft == FT_F32 else _F64), &self.v)
        if t.ft == FT_F32:
            af, bf, tf = <float>ad, <float>bd, <const float *>t.b.buf
            for i in range(n):
                (<float *>self.v.b.buf)[i] = tf[i] * af + bf
        else:
            td = <const double *>t.b.buf
            for i in range(n):
                (<double *>self.v.b.buf)[i] = td[i] * ad + bd
        return True

    def __dealloc__(self):
        _close(&self.v)


def fast_keras_categorical(y_true, y_pred, from_logits, axis, reduction, int want,
                           row_sums=None, sample_weight=None, smooth=None):
    """A Keras CategoricalCrossentropy object's call, or None to decline. Probabilities
    need ``row_sums`` (the general path's ``y_pred @ ones``, in y_pred's dtype): they are
    divided by them here, then clipped to [1e-7, 1 - 1e-7] by the kernel, as the general
    path does. Label smoothing: ``smooth`` (see _Smoothed)."""
    cdef View x, t, rs, sw
    cdef Args a
    cdef int bad, red = _keras_reduction(reduction, sample_weight is not None)
    cdef _Smoothed sm = _Smoothed() if smooth is not None else None
    if red < 0 or not (from_logits is True or from_logits is False):
        return None
    x.held = t.held = rs.held = sw.held = False
    try:
        if not _keras_pred(y_pred, &x, want, axis) or not _open(y_true, &t) or t.ft != x.ft:
            return None
        if not _same_shape(&x, &t) or not _keras_sample_weight(sample_weight, &sw, x.b.shape[0]):
            return None
        if from_logits is False and not (
                _open(row_sums, &rs) and rs.ft == x.ft and rs.b.ndim == 1
                and rs.b.shape[0] == x.b.shape[0]):
            return None
        if sm is not None and not sm.make(&t, smooth):
            return None
        _init(&a, K_CAT, x.b.shape[0], x.b.shape[1], _block_rows(x.b.shape[1]), &bad)
        a.t = t.b.buf if sm is None else sm.v.b.buf
        a.logits = from_logits is True
        if from_logits is False:
            a.clip = CLIP_EPS
            a.eps = 1e-7
        return _keras_run(&a, &x, 0 if from_logits is True else 2,
                          rs.b.buf if rs.held else NULL, red, &sw, False)
    finally:
        _close(&x)
        _close(&t)
        _close(&rs)
        _close(&sw)


cdef bint _all_finite(const floating *x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        bad |= not (x[i] - x[i] == 0)
    return bad == 0


def fast_keras_bce(y_true, y_pred, from_logits, axis, reduction, int want, bint keras2,
                   sample_weight=None, smooth=None):
    """A Keras BinaryCrossentropy object's fused call (one kernel pass, the block sums
    combined exactly, then ``/ K`` and ``/ n`` or the weight sum) without label smoothing,
    or None to decline. Same-shaped C-contiguous arrays of rank >= 2, the mean over the
    last axis; logits all finite (TensorFlow's NaN at infinite logits: the general path);
    probabilities clipped by the kernel as Keras 3 (CLIP_EPS) or tf.keras 2 (CLIP_KERAS2).
    Keras 3's ``sample_weight``: (n,) for (n, K) arrays, none zero (as _fused takes it).
    Label smoothing: ``smooth`` (see _Smoothed)."""
    cdef View x, z, sw
    cdef Args a
    cdef _Smoothed sm = _Smoothed() if smooth is not None else None
    cdef int bad, nt, red = _keras_reduction(reduction, sample_weight is not None)
    cdef double lp_s[FAST_STACK]
    cdef double wp_s[FAST_STACK]
    cdef double *lp = lp_s
    cdef double *w = NULL
    cdef Py_ssize_t n, K, nb, i
    cdef double total, d
    if red < 0 or not (from_logits is True or from_logits is False):
        return None
    x.held = z.held = sw.held = False
    try:
        if not _open(y_pred, &x) or x.ft > FT_F64 or x.b.ndim < 2 or (want and x.ft != want):
            return None
        if not _last_axis(axis, x.b.ndim) or not _open(y_true, &z) or z.ft != x.ft:
            return None
        n = _prod(x.b.shape, x.b.ndim)
        K = x.b.shape[x.b.ndim - 1]
        if not _same_shape(&x, &z) or n == 0:
            return None
        if from_logits is True and not (
                _all_finite(<const float *>x.b.buf, n) if x.ft == FT_F32
                else _all_finite(<const double *>x.b.buf, n)):
            return None
        _init(&a, K_BCE, n, 1, _block_rows(1), &bad)
        d = <double>(n // K)
        if sample_weight is not None:
            if x.b.ndim != 2 or not _keras_sample_weight(sample_weight, &sw, n // K):
                return None
            w = <double *>malloc((n // K) * sizeof(double))
            if w == NULL:
                raise MemoryError()
            if not _keras_weights(&sw, x.ft, &a, w, n // K):
                return None
            for i in range(n // K):
                if w[i] == 0.0:
                    return None  # Keras's NaN * 0: _fused leaves zero weights to the rest
            a.sw = w
            a.sw_div = K
            if red == RED_MEAN_SW:
                d = _np_sum_as_f64(w, n // K, x.ft == FT_F32)
        nb = (n + a.block_rows - 1) // a.block_rows
        if sm is not None and not sm.make(&z, smooth):
            return None
        if nb > FAST_STACK:
            lp = <double *>malloc(2 * nb * sizeof(double))
            if lp == NULL:
                raise MemoryError()
        a.lp = lp
        a.wp = lp + nb if lp != lp_s else wp_s
        a.t = z.b.buf if sm is None else sm.v.b.buf
        a.logits = from_logits is True
        if from_logits is False:
            a.clip = CLIP_KERAS2 if keras2 else CLIP_EPS
            a.eps = 1e-7
        nt = _serial(n, _fast_default_threads)
        with nogil:
            if x.ft == FT_F32:
                _run(&a, <const float *>x.b.buf, nt)
            else:
                _run(&a, <const double *>x.b.buf, nt)
        if nb == 1:
            total = lp[0]
        elif not _exact_sum(lp, nb, &total):
            return None
        return _keras_scalar(x.ft, total / K, d, red)
    finally:
        if lp != lp_s:
            free(lp)
        free(w)
        _close(&x)
        _close(&z)
        _close(&sw)
