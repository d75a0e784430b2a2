"""Derivation of the polynomial coefficients of ``_math`` (a development tool).

Not imported by the package; needs mpmath. ``python -m fastloss.kernels.numba._coeffs``
prints the coefficient tuples ``E10``, ``E6``, ``L6`` and ``L3`` and the relative
error of each fit. Each is a Remez exchange for the minimax *relative* error:

* ``exp``: ``exp(r) = 1 + r + r**2 q(r)`` on ``|r| <= ln2/2`` (a hair wider, since
  ``k = round(x / ln2)`` is computed in floating point), fitting
  ``q(r) = (exp(r) - 1 - r) / r**2``;
* ``log``: fdlibm's ``log1p(f) = f - hfsq + s (hfsq + z g(z))`` with
  ``s = f / (2 + f)``, ``z = s**2``, on ``z <= ((sqrt2 - 1) / (sqrt2 + 1))**2``,
  fitting ``g(z) = (2 atanh(s) / s - 2) / z``.
"""

import mpmath as mp

mp.mp.dps = 60


def remez(f, a, b, deg, iters=30, grid=4000):
    """Coefficients (ascending) of the degree-``deg`` polynomial minimising
    ``max |p(x) / f(x) - 1|`` on [a, b], and that maximum."""
    a, b = mp.mpf(a), mp.mpf(b)
    n = deg + 2
    xs = [(a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * (n - 1 - i) / (n - 1)) for i in range(n)]
    c, maxerr = None, None
    for _ in range(iters):
        A = mp.matrix(n, n)
        rhs = mp.matrix(n, 1)
        for j, x in enumerate(xs):
            fx = f(x)
            for i in range(deg + 1):
                A[j, i] = x ** i
            A[j, deg + 1] = (-1) ** j * abs(fx)
            rhs[j] = fx
        sol = mp.lu_solve(A, rhs)
        c = [sol[i] for i in range(deg + 1)]

        def err(x):
            fx = f(x)
            return (mp.polyval(c[::-1], x) - fx) / abs(fx)

        g = [a + (b - a) * i / grid for i in range(grid + 1)]
        ev = [err(x) for x in g]
        ext, run = [], [0]
        for i in range(1, len(g)):  # the extremum of each run of equal sign
            if mp.sign(ev[i]) == mp.sign(ev[run[-1]]) or ev[i] == 0:
                run.append(i)
            else:
                ext.append(max(run, key=lambda k: abs(ev[k])))
                run = [i]
        ext.append(max(run, key=lambda k: abs(ev[k])))
        while len(ext) > n:
            ext.pop(0 if abs(ev[ext[0]]) < abs(ev[ext[-1]]) else -1)
        maxerr = max(abs(e) for e in ev)
        if len(ext) < n:
            break
        new = [g[k] for k in ext]
        done = all(abs(new[i] - xs[i]) < (b - a) / grid / 10 for i in range(n))
        xs = new
        if done:
            break
    return c, maxerr


def exp_q(r):
    if abs(r) < mp.mpf("1e-30"):
        return mp.mpf(1) / 2
    return (mp.exp(r) - 1 - r) / r ** 2


def log_g(z):
    if z < mp.mpf("1e-40"):
        return mp.mpf(2) / 3
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) / s - 2) / z


def main():
    R = mp.log(2) / 2 * mp.mpf("1.0001")
    S = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)
    for name, f, lo, hi, deg in (("E10", exp_q, -R, R, 10), ("E6", exp_q, -R, R, 6),
                                 ("L6", log_g, mp.mpf("1e-45"), S ** 2 * mp.mpf("1.0001"), 6),
                                 ("L3", log_g, mp.mpf("1e-45"), S ** 2 * mp.mpf("1.0001"), 3)):
        c, e = remez(f, lo, hi, deg)
        coeffs = ", ".join(mp.nstr(x, 20) for x in c)
        print(f"{name} = ({coeffs})  # relative error {mp.nstr(e, 3)}")


if __name__ == "__main__":
    main()
