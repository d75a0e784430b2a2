"""Kernel threads per Dask task: ``dask threads x kernel threads <= cores`` per host."""

import os
import threading

from fastloss._dispatch import cpu_count

__all__ = ["kernel_threads", "thread_plan"]


def _host(address):
    from distributed.comm import get_address_host

    return get_address_host(address)


def thread_plan(client):
    """Kernel threads per task for every host of a cluster: ``max(1, cores // threads)``.

    Parameters
    ----------
    client : distributed.Client
        A client of the cluster.

    Returns
    -------
    dict
        ``{host: kernel threads per task}``, with ``threads`` the Dask worker threads of
        all the workers on that host and ``cores`` the CPUs a worker there may use.

    See Also
    --------
    kernel_threads : what a task uses, given this plan.

    Notes
    -----
    ``dask threads x kernel threads <= cores`` on every host, so no core is
    oversubscribed. The thread count never changes a result (the kernels' reduction is
    fixed), only the speed.

    Examples
    --------
    >>> from distributed import Client
    >>> with Client(n_workers=1, threads_per_worker=1, processes=False,
    ...             dashboard_address=None) as client:
    ...     plan = thread_plan(client)
    >>> [max(1, cpu_count() // 1)] == list(plan.values())
    True
    """
    info = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(cpu_count)
    hosts = {}
    for addr, w in info.items():
        h = hosts.setdefault(_host(addr), [0, 1])
        h[0] += int(w.get("nthreads", 1))
        h[1] = max(h[1], int(cores.get(addr, 1)))
    return {host: max(1, c // max(t, 1)) for host, (t, c) in hosts.items()}


def kernel_threads(plan=None):
    """The kernel thread count a task uses where it runs.

    Parameters
    ----------
    plan : dict, optional
        ``{host: threads}`` from :func:`thread_plan`.

    Returns
    -------
    int or None
        On a Dask worker: ``FASTLOSS_NUM_THREADS`` if set in the worker's environment,
        else ``plan[host]``, else ``max(1, cores // worker threads)``. In a thread of
        dask's local thread pool: 1. Elsewhere: ``FASTLOSS_NUM_THREADS`` if set, else
        None (fastloss's default).

    See Also
    --------
    thread_plan : the per-host plan.

    Notes
    -----
    Results do not depend on it: the kernels reduce in fixed blocks whatever the
    thread count.

    Examples
    --------
    >>> import os
    >>> kernel_threads() is None or "FASTLOSS_NUM_THREADS" in os.environ  # the main thread
    True
    """
    env = os.environ.get("FASTLOSS_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        w = None
    if w is not None:
        if plan:
            try:
                n = plan.get(_host(w.address))
            except Exception:  # an address without a host part
                n = None
            if n:
                return int(n)
        nthreads = getattr(getattr(w, "state", None), "nthreads", None) or \
            getattr(w, "nthreads", 1)
        return max(1, cpu_count() // max(int(nthreads), 1))
    if threading.current_thread() is not threading.main_thread():
        return 1
    return None
