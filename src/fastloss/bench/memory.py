"""Peak extra memory of one call, per library, on the large cases.

Each (library, case) runs in its own fresh process, which builds the
data, does the library's setup (tensor conversion counts as input, not as the
call's memory) and one warm-up call on a small input of the same operation and
dtype (so JIT compilation is not counted), then resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``), records the RSS, makes one call and reads the peak
(``VmHWM``). The difference is the call's peak extra memory. Where the mark cannot
be reset, a thread samples the RSS every 0.5 ms instead (which can miss
short-lived peaks; the record says which method was used).

``python -m fastloss.bench.memory --out FILE [--profile quick|full]``.
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

QUICK_CASES = ["sparse_ce|512x28996|float32", "bce_probs|1e7|float32"]


def full_cases():
    """Every float32 case of 1e7 elements or more (float64 needs twice as much)."""
    from fastloss.bench import registry as R

    return [c.id for c in R.all_cases() if c.elements >= 10_000_000 and c.dtype == "float32"]


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak = _rss()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.0005)


def peak_extra(fn):
    """``(extra_bytes, method)`` of one call of ``fn``."""
    gc.collect()
    if _reset_peak():
        before = _rss()
        fn()
        return max(0, _status("VmHWM") - before), "VmHWM reset"
    s = _Sampler()
    before = _rss()
    s.start()
    fn()
    s.stop.set()
    s.join()
    return max(0, max(s.peak, _rss()) - before), "RSS sampled every 0.5 ms"


def _child(lib, case_ids, threads):
    from fastloss.bench import registry as R

    if lib == "tensorflow":
        R.configure_tensorflow(threads)
    by_id = {c.id: c for c in R.all_cases()}
    out = []
    for cid in case_ids:
        case = by_id[cid]
        rec = {"library": lib, "case": cid, "op": case.op, "label": case.label,
               "dtype": case.dtype, "elements": case.elements, "threads": threads}
        out.append(rec)
        if lib not in R.COMPARISONS[case.op]:
            rec["skipped"] = f"{lib} has no {case.op}"
            continue
        try:
            small = R.make_data(case.op, (64, 16) if case.op in R.ROW_OPS else (1024,),
                                case.dtype)
            R.to_numpy(R.make(case.op, lib, small, threads)())  # compile / trace / import
            data = R.make_data(case.op, case.shape, case.dtype)
            rec["input_bytes"] = R.input_bytes(data)
            fn = R.make(case.op, lib, data, threads)
            res = {}

            def call():
                res["r"] = fn()

            extra, method = peak_extra(call)
            del res["r"]
            rec.update(extra_bytes=extra, method=method,
                       extra_over_input=extra / rec["input_bytes"])
        except (R.Unsupported, R.ThreadMismatch) as exc:
            rec["skipped"] = str(exc)
        except Exception as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
        gc.collect()
    return out


def run_child(lib, cid, threads, env=None, timeout=1200):
    cmd = [sys.executable, "-m", "fastloss.bench.memory", "--child", lib,
           "--threads", str(threads), "--cases", cid]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["failed"])[-1][:500]
        return [{"library": lib, "case": cid, "error": err}]
    return json.loads(p.stdout.strip().splitlines()[-1])


def run(profile="quick", libs=None, threads=None, env=None, log=None, jobs=1, ops=None):
    """One fresh process per (library, case): memory a library's allocator keeps from
    an earlier call (TensorFlow's does) would otherwise hide the next call's peak.
    Peak memory does not depend on timing, so ``jobs`` processes may run at once."""
    from concurrent.futures import ThreadPoolExecutor

    from fastloss.bench import registry as R

    threads = threads or R.ALL_CORES
    case_ids = QUICK_CASES if profile == "quick" else full_cases()
    if ops:
        case_ids = [c for c in case_ids if c.split("|")[0] in ops]
    records, todo = [], []
    for lib in libs or R.LIBRARIES:
        ok, why = R.library_available(lib)
        if not ok:
            records.append({"library": lib, "skipped": f"not available: {why}"})
            continue
        todo += [(lib, c) for c in case_ids if lib in R.COMPARISONS[c.split("|")[0]]]
    with ThreadPoolExecutor(max(1, jobs)) as ex:
        futures = [(lib, cid, ex.submit(run_child, lib, cid, threads, env))
                   for lib, cid in todo]
        for lib, cid, fut in futures:
            recs = fut.result()
            records += recs
            if log:
                r = recs[-1]
                log(f"  memory {lib:16s} {cid:34s} " + (
                    f"{r['extra_bytes'] / 1e6:8.1f} MB" if "extra_bytes" in r else
                    r.get("error") or r.get("skipped", "")))
    return {"threads": threads, "profile": profile, "jobs": jobs, "records": records}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child")
    ap.add_argument("--cases", nargs="*")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--profile", default="quick", choices=["quick", "full"])
    ap.add_argument("--libs", nargs="*")
    ap.add_argument("--ops", nargs="*")
    ap.add_argument("--jobs", type=int, default=1, help="processes at once")
    ap.add_argument("--out", help="write the JSON there (default: print the Markdown table)")
    a = ap.parse_args(argv)
    if a.child:
        from fastloss.bench import registry as R

        print(json.dumps(_child(a.child, a.cases, a.threads or R.ALL_CORES)))
        return 0
    res = run(a.profile, a.libs, a.threads, log=lambda m: print(m, file=sys.stderr, flush=True),
              jobs=a.jobs, ops=a.ops)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f)
    else:  # run alone: the Markdown table of the report
        from fastloss.bench.tables import memory_section

        print(memory_section({"memory": res}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
