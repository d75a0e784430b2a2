"""Compute kernels of fastloss, one sub-package per backend.

``fastloss.kernels.reference`` (NumPy, always there, the test oracle),
``fastloss.kernels.numba`` (JIT) and ``fastloss.kernels.cython`` (compiled ahead of
time with OpenMP) implement the same *kernel contract* below. The public API in
``fastloss`` validates, converts and dispatches; kernels assume valid input.

Kernel contract
===============
Every backend module exposes ``AVAILABLE`` (bool), ``WHY_UNAVAILABLE`` (str) and
these functions. All arguments are positional, there is no ``None``: an absent
array is a zero-length float64 array. ``x`` and friends are C-contiguous float32 or
float64 arrays; every other float array argument is float64; labels are int64.

Half precision (float16, ``ml_dtypes.bfloat16``) is not a kernel dtype of the NumPy
reference: the Python layer (``fastloss.losses._run.run_chunks``) widens half ``x`` (and
half targets) exactly to float32 a chunk of whole blocks at a time into a reused buffer,
then calls the float32 kernel, so a half input gives bit for bit the float32 kernel's
result on ``x.astype(float32)`` for any thread count and chunking. Results, gradients and
row outputs of half input are float32 (the kernels' compute type): a float16 sum overflows
at 65504 and bfloat16 keeps 8 bits, so rounding back would throw away what the float64
accumulation computed. The drop-ins round to their framework's dtype themselves (torch:
the input's; Keras: its ``dtype``).

A backend takes half ``x`` itself for the functions named in its ``HALF_NATIVE`` set
(Numba and Cython: every loss and ``*_grad`` function, ``logsumexp_rows`` and
``softmax_rows``, on logits and probabilities alike; targets never half): ``x`` is then a
float16 / ``ml_dtypes.bfloat16`` array (C-contiguous rows; strided input is copied a chunk
of whole blocks at a time), ``out`` and the gradients are float32, and only 2 bytes a value
come from memory. Numba takes the raw bits (``uint16`` for bfloat16, ``int16`` for
float16) into the same kernels, each block widened exactly inside the parallel loop: its
outputs are the float32 kernel's bits on ``x.astype(float32)``. Cython takes exp(x) and
log1p(exp(-|x|)) of half logits from tables of float64 values, one entry per bit pattern
(a gather instead of ~30 vector instructions): the row statistics of rows wider than 32
whose max lies in [-300, 600] (the losses on logits, their gradients, ``logsumexp_rows``,
``softmax_rows``: softmax as exp(x_j) / sum exp(x_j) from the table) and BCE on logits.
Its half results are within 1 ulp of the float64 reference as the float32 path's are, but
may differ from the float32 path's bits on the widened input in the last place; every
build, thread count and chunking still gives the same bits.

Every compiled backend returns the same bits on every SIMD build of it (no FMA, fixed
summation lanes) and writes every NaN result as the positive quiet NaN: which of two NaNs
an IEEE operation returns depends on the operand order a compiler picks, which differs
between vector and scalar code (the reference backend may return other NaNs).

Row reductions (``out`` has ``x``'s dtype)::

    logsumexp_rows(x[N, C], out[N], n_threads)
    softmax_rows(x[N, C], out[N, C], log, n_threads)        # log=True: log_softmax

Losses. Each computes for every sample ``i`` a loss value ``v_i`` (in x's dtype,
i.e. rounded to float32 for float32 input), a float64 weight ``w_i`` and the
float64 contribution ``c_i = float64(v_i) * w_i`` (``c_i = 0`` when ``w_i == 0``:
a zero weight removes the sample, even if its loss is inf or NaN). Then, if
``out`` has length N, ``out[i] = dtype(c_i)`` (the per-sample values of
``reduction="none"``); if ``lp``/``wp`` have length ``ceil(N / block_rows)``,
``lp[b]``/``wp[b]`` are the block sums of ``c_i``/``w_i`` over rows
``[b*block_rows, (b+1)*block_rows)`` computed exactly as :func:`_blocks.block_sum`
specifies (so every backend and every thread count give the same bits).
``nan_omit``: samples whose ``v_i`` is NaN are left out of ``lp`` and ``wp``
(``out`` still shows the NaN)::

    sparse_ce(x[N, C], y[N] int64, sw[N|0], cw[C|0], from_logits, ignore_index,
              has_ignore, label_smoothing, z_loss, clip_mode, clip_eps, nan_omit,
              block_rows, out, lp, wp, n_threads)
        v = (1-ls)*nll(y) + ls/C * sum_j nll(j) + z_loss * lse**2
        with nll(j) = lse - x_j (logits) or -log(clip(p_j)) (probabilities);
        w = sw[i] * cw[y_i]; ignored rows (has_ignore and y_i == ignore_index):
        w = 0, out = 0.
    categorical_ce(x[N, C], t[N, C], sw[N|0], cw[C|0], from_logits, label_smoothing,
                   clip_mode, clip_eps, nan_omit, block_rows, out, lp, wp, n_threads)
        v = sum_c cw_c * t'_c * nll(c), t' = (1-ls)*t + ls/C, a zero t'_c adds 0.
    bce(x[M], z[M], sw[M/sw_div|0], sw_div, pw[K|0], from_logits, label_smoothing,
        clip_mode, clip_eps, nan_omit, block_rows, out, lp, wp, n_threads)
        flat elements; weight sw[i // sw_div]; pos_weight pw[i % K];
        z' = z*(1-ls) + 0.5*ls; logits: (1-z')*x + (pw*z' + (1-z')) * softplus(-x)
        (= max(x,0) - x*z' + log1p(exp(-|x|)) when pw == 1); the linear term is
        (1-z')*x for x >= 0 and -pw*z'*x for x < 0, each 0 when its coefficient
        is 0 (so x = +inf, z' = 1 and x = -inf, z' = 0 give 0, not NaN);
        probabilities: -(pw*z'*log(p) + (1-z')*log(1-p)) with the clip mode.
    kl(x[N, C], t[N, C], sw[N|0], log_input, log_target, clip_mode, clip_eps,
       nan_omit, block_rows, out, lp, wp, n_threads)
        v = sum_c t_c*(log t_c - log p_c); a zero target adds exactly 0;
        clip_mode 1 clips t and p to [eps, 1] first (Keras).
    mse(x[N, C], t[N, C], ow[C|0], sw[N|0], nan_omit, block_rows, out, lp, wp,
        n_threads)
        v = sum_c ow_c*(x_c - t_c)**2 / sum_c ow_c  (mean over c without ow).

Fused loss + gradient (+ diagonal Hessian), on logits for the cross-entropies.
``lp``/``wp`` are filled exactly as by the forward kernel (always requested);
``g`` (and ``h`` unless it has zero length) get, for every element, the derivative
of ``v_i`` times ``s_i = w_i * scale`` (``scale`` = 1 for a sum, ``1/sum(w)`` for a
mean), in x's dtype; ignored rows get 0::

    sparse_ce_grad(x, y, sw, cw, ignore_index, has_ignore, label_smoothing, z_loss,
                   scale, block_rows, lp, wp, g[N, C], h[N, C] | [0, 0], n_threads)
        g = p*(1 + 2*z_loss*lse) - (1-ls)*[j == y] - ls/C
        h = p*(1-p)*(1 + 2*z_loss*lse) + 2*z_loss*p**2
    categorical_ce_grad(x, t, sw, cw, label_smoothing, scale, block_rows, lp, wp, g, h,
                        n_threads)
        a = cw*t', A = sum(a): g = A*p - a, h = A*p*(1-p)
    bce_grad(x, z, sw, sw_div, pw, label_smoothing, scale, block_rows, lp, wp, g[M],
             h[M] | [0], n_threads)
        s = sigmoid(x), c = pw*z' + (1-z'): g = c*s - pw*z', h = c*s*(1-s)
    kl_grad(x, t, sw, log_input, log_target, scale, block_rows, lp, wp, g, h, n_threads)
        g = -t/p, h = t/p**2 (0 where t == 0); log_input: g = -t, h = 0
    mse_grad(x, t, ow, sw, scale, block_rows, lp, wp, g, h, n_threads)
        g = 2*ow*(x - t)/sum(ow), h = 2*ow/sum(ow)

Row argmax (top-1 accuracy of the offline evaluation)::

    argmax_rows(x[N, C], out[N] int64, n_threads)    # C >= 1; exactly np.argmax(x, 1):
                                                      # first maximum, first NaN wins

Element-wise functions of ``scipy.special`` (``x``, ``y``, ``out`` 1-D, one dtype,
computed in float64, rounded once to the dtype)::

    elementwise(op, x[M], y[M], out[M], n_threads)
        EW_XLOGY:    x*log(y); 0 where x == 0 and y is not NaN
        EW_REL_ENTR: x*L where x > 0 and y > 0, L = log1p((x-y)/y) if 0.5 < x/y < 2,
                     log(x/y) if x/y is a normal number, log(x) - log(y) otherwise (SciPy
                     1.15+: no overflow or underflow of x/y); 0 where x == 0 and y >= 0;
                     NaN if x or y is NaN; +inf otherwise
        EW_KL_DIV:   x*log(x/y) - x + y where x > 0 and y > 0; y where x == 0 and
                     y >= 0; NaN if x or y is NaN; +inf otherwise

Validation helper::

    first_outside_unit_interval(x[M]) -> int     # first flat index with x<0 or x>1
                                                  # (NaN is not outside), or -1

Clip modes (probability inputs): ``CLIP_NONE`` exact math (+inf where the loss
is infinite); ``CLIP_EPS`` clip p to ``[eps, 1-eps]`` with the bounds computed in
x's dtype (float32: ``1-1e-7`` is ``0.99999988``); ``CLIP_KERAS2`` the same clip,
then ``log(p + eps)`` and ``log((1 - p) + eps)`` with the additions done in x's
dtype (tf.keras 2.x); ``CLIP_TORCH`` every log clamped at ``-100``.
"""

from ._blocks import (  # noqa: F401
    BLOCK_ELEMS,
    CLIP_EPS,
    CLIP_KERAS2,
    CLIP_NONE,
    CLIP_TORCH,
    EW_KL_DIV,
    EW_REL_ENTR,
    EW_XLOGY,
    LANES,
    block_rows_for,
    block_sum,
    n_blocks,
)

# The function names of the contract above: every backend defines all of them.
CONTRACT = (
    "argmax_rows", "bce", "bce_grad", "categorical_ce", "categorical_ce_grad", "elementwise",
    "first_outside_unit_interval", "kl", "kl_grad", "logsumexp_rows", "mse", "mse_grad",
    "softmax_rows", "sparse_ce", "sparse_ce_grad",
)
