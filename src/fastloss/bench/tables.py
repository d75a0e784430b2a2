"""The Markdown report of ``fastloss bench``, generated from ``results.json`` alone."""

from fastloss.bench import registry as R


def _order(libs):
    known = [lib for lib in R.LIBRARIES if lib in libs]
    return known + sorted(set(libs) - set(known))


def _case_key(rec):
    ops = list(R.OPS)
    shapes = [s[0] for s in R.ROW_SHAPES + R.FLAT_SHAPES]
    return (ops.index(rec["op"]) if rec["op"] in ops else 99,
            shapes.index(rec["label"]) if rec["label"] in shapes else 99)


def fmt_rate(v):
    if v is None:
        return "-"
    if v >= 1e9:
        return f"{v / 1e9:.3g} G/s"
    if v >= 1e6:
        return f"{v / 1e6:.3g} M/s"
    return f"{v / 1e3:.3g} k/s"


def fmt_ratio(r):
    if r is None:
        return ""
    return f"{r:.2g}×" if r < 10 else f"{r:.0f}×"


def fmt_ulp(v):
    if v is None:
        return "-"
    if v < 10:
        return f"{v:.2f}"
    if v < 1e4:
        return f"{v:.0f}"
    return f"{v:.1e}"


def fmt_s(v):
    if v is None:
        return "-"
    if v < 1e-3:
        return f"{v * 1e6:.0f} µs"
    if v < 1:
        return f"{v * 1e3:.1f} ms"
    return f"{v:.2f} s"


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- throughput


def throughput_records(results):
    return [r for part in results.get("throughput", []) for r in part["records"]]


def throughput_section(results):
    recs = throughput_records(results)
    if not recs:
        return ""
    ref = R.REFERENCE_LIB
    out = ["## Throughput", "",
           f"Elements of `y_pred` per second at the best of the timed rounds, and in "
           f"parentheses the ratio to {ref} at the same thread count (above 1: faster than "
           f"{ref}). **Bold**: fastest. ✗: the result did not match the reference, so it is "
           f"not ranked. -: the library has no such operation or was skipped (see the end of "
           f"the report). Medians, spread, rounds and first-call times are in `results.json`.",
           ""]
    groups = {}
    for r in recs:
        groups.setdefault((r["dtype"], r["threads"]), []).append(r)
    for (dtype, threads) in sorted(groups, key=lambda k: (k[0] != "float32", k[1])):
        g = groups[(dtype, threads)]
        libs = _order({r["library"] for r in g if "best_s" in r})
        rows = {}
        for r in g:
            rows.setdefault((r["op"], r["label"]), {})[r["library"]] = r
        body = []
        for (op, label) in sorted(rows, key=lambda k: _case_key({"op": k[0], "label": k[1]})):
            cells = rows[(op, label)]
            base = cells.get(ref, {}).get("elements_per_s")
            ok = {lib: c for lib, c in cells.items()
                  if "elements_per_s" in c and c.get("check", {}).get("ok")}
            best = max(ok, key=lambda lib: ok[lib]["elements_per_s"]) if ok else None
            row = [op, label]
            for lib in libs:
                c = cells.get(lib, {})
                v = c.get("elements_per_s")
                if v is None:
                    row.append("-")
                    continue
                txt = fmt_rate(v)
                if base:
                    txt += f" ({fmt_ratio(v / base)})"
                if not c.get("check", {}).get("ok"):
                    txt += " ✗"
                elif lib == best:
                    txt = f"**{txt}**"
                row.append(txt)
            body.append(row)
        out += [f"### {dtype}, {threads} thread{'s' if threads > 1 else ''}", "",
                _table(["operation", "shape", *libs], body), ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- accuracy


def accuracy_section(results):
    acc = results.get("accuracy")
    if not acc:
        return ""
    recs = [r for r in acc["records"] if "input" in r and r["input"] != "all"]
    by = {}
    for r in recs:
        by.setdefault((r["op"], r["library"]), {})[r["input"]] = r
    n_id = acc.get("identical_n")
    n_rows = acc.get("identical_rows_n", n_id)
    out = ["## Accuracy", "",
           f"float32 inputs at {acc['threads']} threads. Error in float32 ulps "
           "(|result − truth| / spacing of float32 at the truth) of the per-element losses "
           "and of the mean. Truth: float64 with stable formulas (random), mpmath at 60 digits "
           "(adversarial, identical). *non-finite*: results that are inf/NaN where the true "
           "loss is finite; *finite for ∞*: finite (clipped) results where the true loss is "
           "infinite. Means are over the inputs whose true loss is finite. Clipping libraries "
           "(scikit-learn, Keras, `F.binary_cross_entropy`) are judged against the true loss, "
           f"as a user would; a non-zero result where the truth is 0 counts in units of the "
           f"smallest float32 subnormal (2^-149), which is why clipped results reach ~1e37 ulps. "
           f"*identical*: the mean of {n_id:.0e} identical losses ({n_rows:.0e} rows for the row "
           f"operations); its error is the summation's.", ""]
    header = ["operation", "library", "random max / median", "random mean",
              "adversarial max / median", "non-finite", "finite for ∞", "adversarial mean",
              "identical mean", "worst adversarial input"]
    body = []
    for (op, lib) in sorted(by, key=lambda k: (list(R.OPS).index(k[0]), _order(
            [x[1] for x in by if x[0] == k[0]]).index(k[1]))):
        d = by[(op, lib)]
        row = [op, lib]
        for kind in ("random", "adversarial"):
            r = d.get(kind, {})
            e, m = r.get("elementwise"), r.get("mean")
            if "error" in r:
                row += ["error", "error"] + (["", ""] if kind == "adversarial" else [])
                continue
            row.append(f"{fmt_ulp(e['max_ulp'])} / {fmt_ulp(e['median_ulp'])}" if e else
                       ("n/a (mean only)" if m else "-"))
            if kind == "adversarial":
                row.append(str(e["nonfinite_where_finite"]) if e else "-")
                row.append(str(e["finite_where_infinite"]) if e else "-")
            row.append(("non-finite" if m["nonfinite"] else fmt_ulp(m["ulp"])) if m else "-")
        r = d.get("identical", {})
        m = r.get("mean")
        row.append(("non-finite" if m["nonfinite"] else fmt_ulp(m["ulp"])) if m else
                   ("skipped" if "skipped" in r else "error" if "error" in r else "-"))
        e = d.get("adversarial", {}).get("elementwise") or {}
        worst = e.get("worst", "-")
        if e.get("nonfinite_inputs"):
            worst += "; non-finite at: " + ", ".join(e["nonfinite_inputs"][:3])
        row.append(worst)
        body.append(row)
    out += [_table(header, body), ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- latency, memory


def latency_section(results):
    lat = results.get("latency")
    if not lat:
        return ""
    rows = []
    for r in lat["records"]:
        if "skipped" in r or "error" in r:
            continue
        rows.append([r.get("variant", r["library"]), r["op"], fmt_s(r["import_s"]),
                     fmt_s(r["first_call_s"]), fmt_s(r["import_plus_first_s"]),
                     fmt_s(r["second_call_s"]), fmt_s(r["process_wall_s"])])
    return "\n".join([
        "## First-call latency", "",
        f"Each library in a fresh process (best of {lat['repeat']}), 32 × 10 float32 input, "
        f"{lat['threads']} threads. *import*: importing the library (fastloss: `import "
        "fastloss` and loading the backend's kernels) after NumPy; *first call*: setup "
        "(tensor conversion) + first call, including JIT compilation or graph tracing; "
        "*process*: the whole child process, interpreter start to exit.", "",
        _table(["library", "operation", "import", "first call", "import + first call",
                "second call", "process"], rows), ""])


def per_call_section(results):
    """The per-call table (``fastloss.bench.latency.per_call``): fixed cost per call."""
    res = results.get("percall")
    if not res:
        return ""
    from fastloss.bench.latency import per_call_table

    return "\n".join(["## Per-call time (small batches)", "", per_call_table(res)])


def memory_section(results):
    mem = results.get("memory")
    if not mem:
        return ""
    recs = [r for r in mem["records"] if "case" in r]
    libs = _order({r["library"] for r in recs if "extra_bytes" in r})
    cases = []
    for r in recs:
        if r["case"] not in cases:
            cases.append(r["case"])
    cell = {(r["case"], r["library"]): r for r in recs}
    body = []
    for c in cases:
        row = [c.replace("|", " ")]
        for lib in libs:
            r = cell.get((c, lib), {})
            row.append(f"{r['extra_bytes'] / 1e6:.0f} MB ({r['extra_over_input']:.2f}×)"
                       if "extra_bytes" in r else ("error" if "error" in r else "-"))
        body.append(row)
    methods = sorted({r.get("method") for r in recs if r.get("method")})
    return "\n".join([
        "## Peak extra memory", "",
        f"Peak resident memory of one call above what the process held before it "
        f"(inputs and converted tensors excluded), each library and case in a fresh "
        f"process after a small warm-up call, {mem['threads']} threads; in parentheses "
        f"as a multiple of the input size. Method: {', '.join(methods) or '-'}.", "",
        _table(["case", *libs], body), ""])


def not_measured_section(results):
    seen = {}
    for r in throughput_records(results) + [
            r for k in ("accuracy", "latency", "memory") for r in (results.get(k) or {}).get(
                "records", [])]:
        why = r.get("skipped") or (f"error: {r['error']}" if "error" in r else None)
        if not why or " has no " in why:
            continue
        seen.setdefault((r.get("library", "?"), why), 0)
        seen[(r.get("library", "?"), why)] += 1
    if not seen:
        return ""
    rows = [[lib, why, n] for (lib, why), n in sorted(seen.items())]
    return "\n".join(["## Not measured", "", _table(["library", "reason", "cases"], rows), ""])


# --------------------------------------------------------------------------- whole report


def header(results):
    m = results["meta"]
    v = m["versions"]
    backends = ", ".join(b for b, e in m["backends"].items() if e["available"])
    missing = ", ".join(f"{b} (not available)" for b, e in m["backends"].items()
                        if not e["available"])
    envs = {}
    for part in results.get("throughput", []):
        envs[part["threads"]] = part.get("environment", {})
    blas = set()
    for e in envs.values():
        for tp in e.get("threadpools", []) if isinstance(e.get("threadpools"), list) else []:
            arch = tp.get("architecture")
            blas.add(" ".join(str(x) for x in (tp.get("prefix"), tp.get("version")) if x)
                     + (f" ({arch})" if arch else ""))
    secs = results.get("seconds", {})
    workers = results.get("throughput") or [{}]
    prof = workers[0].get("settings") or {}
    lines = [
        "# fastloss benchmarks", "",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gib']:.1f} GiB; {m['platform']}." if m.get("memory_gib") else
        f"- **Machine**: {m['cpu']}, {m['cores']} cores; {m['platform']}.",
        f"- **SIMD variant**: {simd_text(results)}.",
        f"- **Command**: `{m['command']}` ({m['profile']} profile), {m['date']}; "
        f"measuring took {_fmt_total(secs.get('total_measuring'))}"
        + "".join(f", {k} {_fmt_total(secs[k])}" for k in PARTS_ORDER if k in secs) + ".",
        f"- **Versions**: fastloss {m['fastloss']} (backends: {backends}"
        + (f"; {missing}" if missing else "") + "), "
        + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".",
        f"- **Threads**: every library at {' and at '.join(map(str, m['thread_counts']))} "
        "thread(s), each thread count in its own process: `torch.set_num_threads`, "
        "TensorFlow's intra-op threads, fastloss's `n_threads`, OMP/OpenBLAS/MKL thread "
        "variables (NumPy, SciPy and scikit-learn compute on one thread)."
        + (f" Thread pools loaded (threadpoolctl): {', '.join(sorted(blas))}." if blas else "")
        + (f" Unset in the benchmark processes: {', '.join(m['unset_env'])}."
           if m.get("unset_env") else ""),
        "- **Method**: same data for every library; setup outside the timed call; results "
        "checked against fastloss's NumPy reference before timing; first call (JIT, tracing) "
        "never timed" + (
            f"; ~{prof['budget']} s per library and case in {prof['passes']} alternating "
            f"passes, at least {prof['min_rounds']} rounds, each pass cut short after "
            f"{prof['deadline_per_pass_s']:.2g} s (at least one round); at least 2 timed calls "
            f"when one call exceeds {prof['cap']} s / {prof['min_rounds']}."
            if prof else "."),
        "- All figures were measured side by side in this one run: compare libraries within "
        "a table, not across runs." + _load_note(results, m["cores"]), ""]
    return "\n".join(lines)


PARTS_ORDER = ("throughput", "accuracy", "latency", "memory")


def simd_text(results):
    """The Cython kernels' SIMD variant of the run (and of each throughput process when
    one differs); "unknown" for results from before it was recorded."""
    def one(v):
        if not v:
            return "unknown (not recorded)"
        if v.get("variant") is None:
            return "none (Cython backend not available)"
        text = f"Cython `{v['variant']}`" + (f" ({v['simd']})" if v.get("simd") else "")
        return text + (f", forced by FASTLOSS_CYTHON_VARIANT={v['forced_by_env']}"
                       if v.get("forced_by_env") else "")

    main = results["meta"].get("simd_variant")
    text = one(main)
    for part in results.get("throughput", []):
        v = part.get("environment", {}).get("simd_variant")
        if v and main and v.get("variant") != main.get("variant"):
            text += f"; throughput at {part['threads']} thread(s): {one(v)}"
    return text


def _load_note(results, cores):
    load = {k: v for k, v in (results.get("loadavg") or {}).items() if v is not None}
    if not load:
        return ""
    txt = ", ".join(f"{k} {v:g}" for k, v in load.items())
    note = f" 1-minute load average (start, then after each part): {txt}"
    # only the timed parts count: accuracy and memory run their own worker processes,
    # which raise the load without disturbing any timing
    timed = [v for k, v in load.items() if k in ("start", "throughput", "latency")]
    if timed and max(timed) > cores * 0.75:
        note += (f" — other work was running on these {cores} cores while timing, so "
                 "multi-threaded timings (whose threads wait for each other) are the least "
                 "reliable")
    elif timed:
        note += (f" (below {cores * 0.75:g} during the timed parts; the accuracy and memory "
                 "parts start their own processes, which raises the load without disturbing "
                 "any timing)")
    return note + "."


def _fmt_total(s):
    if s is None:
        return "-"
    m, s = divmod(int(round(s)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def markdown(results, pngs=()):
    parts = [header(results)]
    pics = {p.split("/")[-1]: p for p in pngs}
    tp = throughput_section(results)
    if tp:
        parts.append(tp)
        parts += [f"![{n}]({n})\n" for n in sorted(pics) if n.startswith("throughput")]
    acc = accuracy_section(results)
    if acc:
        parts.append(acc)
        parts += [f"![{n}]({n})\n" for n in sorted(pics) if n.startswith("accuracy")]
    lat = latency_section(results)
    if lat:
        parts.append(lat)
        parts += [f"![{n}]({n})\n" for n in sorted(pics) if n.startswith("latency")]
    pc = per_call_section(results)
    if pc:
        parts.append(pc)
    mem = memory_section(results)
    if mem:
        parts.append(mem)
        parts += [f"![{n}]({n})\n" for n in sorted(pics) if n.startswith("memory")]
    nm = not_measured_section(results)
    if nm:
        parts.append(nm)
    return "\n".join(parts).rstrip() + "\n"


# --------------------------------------------------------------------------- summary


def summary_table(results, dtype="float32"):
    """One row per (operation, shape) at the most threads measured: the fastest fastloss
    backend vs PyTorch and TensorFlow, and the float32 max ulp error of random inputs.

    This is what ``fastloss bench --readme README.md`` writes into the README."""
    recs = [r for r in throughput_records(results) if r["dtype"] == dtype]
    if not recs:
        return ""
    threads = max(r["threads"] for r in recs)
    cells = {}
    for r in recs:
        if r["threads"] == threads and "elements_per_s" in r and r.get("check", {}).get("ok"):
            cells.setdefault((r["op"], r["label"]), {})[r["library"]] = r["elements_per_s"]
    ulps = {}
    for r in (results.get("accuracy") or {}).get("records", []):
        e = r.get("elementwise") if r.get("input") == "random" else None
        if e:
            ulps[(r["op"], r["library"])] = e["max_ulp"]
    body = []
    for (op, label) in sorted(cells, key=lambda k: _case_key({"op": k[0], "label": k[1]})):
        c = cells[(op, label)]
        ours = {lib: v for lib, v in c.items() if lib.startswith("fastloss-")
                and lib != "fastloss-numpy"}
        if not ours:
            continue
        best = max(ours, key=ours.get)
        row = [op, label, f"{fmt_rate(ours[best])} ({best[9:]})"]
        for lib in ("torch", "tensorflow"):
            v = c.get(lib)
            row.append(f"{fmt_rate(v)} ({fmt_ratio(ours[best] / v)})" if v else "-")
        row.append(" / ".join(fmt_ulp(ulps.get((op, lib))) for lib in (best, "torch",
                                                                         "tensorflow")))
        body.append(row)
    m = results["meta"]
    head = (f"{dtype}, {threads} threads, {m['cpu']} ({m['cores']} cores), SIMD variant: "
            f"{simd_text(results)}, "
            f"`{m['command']}` ({m['profile']} profile), {m['date'][:10]}; in parentheses: "
            "fastloss's speed-up over that library. Generated from `results.json` by "
            "`fastloss bench`; the full report has every library, thread count and dtype.")
    return head + "\n\n" + _table(
        ["operation", "shape", "fastloss (best backend)", "PyTorch", "TensorFlow",
         "max ulp (random): fastloss / torch / TF"], body) + "\n"


README_START = "<!-- fastloss-bench-summary:start -->"
README_END = "<!-- fastloss-bench-summary:end -->"


def update_readme(text, summary, report_link):
    """``text`` with the part between the summary markers replaced (markers must exist)."""
    a, b = text.find(README_START), text.find(README_END)
    if a < 0 or b < a:
        raise ValueError(f"the README has no {README_START} ... {README_END} section")
    block = f"{README_START}\n{summary}\nFull report: [{report_link}]({report_link}).\n"
    return text[:a] + block + text[b:]
