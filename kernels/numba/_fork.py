"""Fork safety: a ``fork()`` child of a process that started GNU OpenMP runs serially.

Numba's ``omp`` threading layer (the default on Linux without TBB) uses GNU
OpenMP, whose thread pool does not survive ``fork()``: Numba then terminates the
child at its first parallel launch ("fork() called from a process already using
GNU OpenMP"), and a ``multiprocessing`` pool waits forever for that worker. So an
``os.register_at_fork`` hook marks such a child (and its own children), and the
backend then calls ``parallel=False`` copies of its kernels there: the same code
with ``prange`` run as ``range``. The kernels' results never depend on the thread
count, so the child's bits are the parent's. Layers that are fork-safe (TBB,
workqueue), or a parent that never launched one, keep the parallel kernels.
"""

import os
import types

SAFE_LAYERS = ("tbb", "workqueue")
serial = False  # True in a fork() child whose parent had started an unsafe layer
_hooks = []     # callables run in the child after the flag is set (lock re-creation)


def _parent_layer():
    try:
        from numba.np.ufunc import parallel
        return parallel.threading_layer()
    except Exception:  # not initialised yet (or no parallel support): nothing to fear
        return None


def _after_fork_in_child():
    global serial
    layer = _parent_layer()
    if layer is not None and layer not in SAFE_LAYERS:
        serial = True
    for f in _hooks:
        f()


os.register_at_fork(after_in_child=_after_fork_in_child)


_copies = {}


def serial_copy(disp):
    """A ``parallel=False`` dispatcher of ``disp``'s Python function, whose parallel
    callees (module globals) are replaced by their own serial copies.

    The copy gets its own ``__qualname__`` because Numba's on-disk cache keys an
    entry on the qualified name and signature, not on the ``parallel`` option: under
    the same name it would load the parallel machine code.
    """
    import numba
    from numba.core.registry import CPUDispatcher

    if id(disp) in _copies:
        return _copies[id(disp)][1]
    f = disp.py_func
    glb = f.__globals__
    names = set(f.__code__.co_names)
    if any(isinstance(glb.get(n), CPUDispatcher) and glb[n].targetoptions.get("parallel")
           for n in names if n != f.__name__):
        glb = dict(glb)
        for n in names:
            d = glb.get(n)
            if n != f.__name__ and isinstance(d, CPUDispatcher) and d.targetoptions.get("parallel"):
                glb[n] = serial_copy(d)
    g = types.FunctionType(f.__code__, glb, f.__name__, f.__defaults__, f.__closure__)
    g.__qualname__ = f.__qualname__ + "__serial"
    g.__module__ = f.__module__
    g.__doc__ = f.__doc__
    opts = {k: v for k, v in disp.targetoptions.items() if k != "nopython"}
    opts["parallel"] = False
    # caching is a dispatcher option, not a target option: carry it over, so that every
    # forked worker after the first loads the serial code instead of compiling it
    opts["cache"] = type(disp._cache).__name__ != "NullCache"
    copy = numba.njit(**opts)(g)
    _copies[id(disp)] = (disp, copy)  # disp kept alive: its id stays unique
    return copy
