"""PNG figures of ``fastloss bench`` (matplotlib, Agg), drawn from ``results.json`` alone."""

from pathlib import Path

from fastloss.bench import registry as R

_MARKERS = "osD^v<>ph*"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _style(lib):
    libs = list(R.LIBRARIES)
    i = libs.index(lib) if lib in libs else len(libs)
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {"color": cmap(i % 10), "marker": _MARKERS[i % len(_MARKERS)]}


def _ordered(libs):
    return [lib for lib in R.LIBRARIES if lib in libs] + sorted(set(libs) - set(R.LIBRARIES))


def plot_throughput(out_dir, results):
    plt = _plt()
    recs = [r for part in results.get("throughput", []) for r in part["records"]
            if "elements_per_s" in r]
    files = []
    order = [s[0] for s in R.ROW_SHAPES + R.FLAT_SHAPES]
    for dtype in sorted({r["dtype"] for r in recs}, key=lambda d: d != "float32"):
        sub = [r for r in recs if r["dtype"] == dtype]
        ops = [op for op in R.OPS if any(r["op"] == op for r in sub)]
        threads = sorted({r["threads"] for r in sub})
        fig, axes = plt.subplots(len(ops), len(threads), squeeze=False,
                                 figsize=(5.2 * len(threads), 2.9 * len(ops)))
        for i, op in enumerate(ops):
            labels = sorted({r["label"] for r in sub if r["op"] == op}, key=order.index)
            for j, t in enumerate(threads):
                ax = axes[i][j]
                cell = [r for r in sub if r["op"] == op and r["threads"] == t]
                for lib in _ordered({r["library"] for r in cell}):
                    pts = sorted((labels.index(r["label"]), r["elements_per_s"],
                                  r.get("check", {}).get("ok", False))
                                 for r in cell if r["library"] == lib)
                    st = _style(lib)
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], label=lib,
                            color=st["color"], marker=st["marker"], ms=4, lw=1.3)
                    bad = [p for p in pts if not p[2]]
                    if bad:
                        ax.plot([p[0] for p in bad], [p[1] for p in bad], "x", color="red",
                                ms=9, mew=2)
                ax.set_yscale("log")
                ax.set_xticks(range(len(labels)))
                ax.set_xticklabels(labels, fontsize=8)
                ax.grid(True, which="major", alpha=0.3)
                ax.set_title(f"{op} — {dtype}, {t} thread{'s' if t > 1 else ''}", fontsize=9)
                if j == 0:
                    ax.set_ylabel("elements / s")
        handles, labs = {}, []
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        labs = _ordered(handles)
        fig.suptitle(f"Throughput vs size, {dtype} (higher is better; red x: result did not "
                     f"match the reference)", fontsize=10)
        fig.tight_layout(rect=(0, 0.045 if len(ops) > 2 else 0.09, 1, 0.98))
        fig.legend([handles[k] for k in labs], labs, loc="lower center", ncol=min(8, len(labs)),
                   fontsize=8, frameon=False)
        path = Path(out_dir) / f"throughput_{dtype}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(str(path))
    return files


def plot_accuracy(out_dir, results):
    acc = results.get("accuracy")
    if not acc:
        return []
    plt = _plt()
    recs = [r for r in acc["records"] if r.get("input") not in (None, "all")]
    ops = [op for op in R.OPS if any(r["op"] == op for r in recs)]
    series = [("random", "elementwise", "max_ulp", "random: max per element"),
              ("adversarial", "elementwise", "max_ulp", "adversarial: max per element"),
              ("adversarial", "mean", "ulp", "adversarial: mean"),
              ("identical", "mean", "ulp", f"{acc['identical_n']:.0e} identical: mean")]
    floor = 1e-2
    fig, axes = plt.subplots(len(ops), 1, figsize=(11, 2.7 * len(ops)), squeeze=False)
    import matplotlib

    cmap = matplotlib.colormaps["Set2"]
    for i, op in enumerate(ops):
        ax = axes[i][0]
        libs = _ordered({r["library"] for r in recs if r["op"] == op})
        w = 0.8 / len(series)
        for k, (kind, part, key, label) in enumerate(series):
            xs, ys, notes = [], [], []
            for li, lib in enumerate(libs):
                r = next((r for r in recs if r["op"] == op and r["library"] == lib
                          and r["input"] == kind), None)
                d = (r or {}).get(part)
                if not d:
                    continue
                x = li - 0.4 + w * (k + 0.5)
                v = d.get(key)
                bad = d.get("nonfinite_where_finite", 0) if part == "elementwise" else (
                    1 if d.get("nonfinite") else 0)
                if v is not None:
                    xs.append(x)
                    ys.append(max(v, floor))
                if bad:
                    notes.append((x, bad))
            ax.bar(xs, ys, width=w, color=cmap(k), label=label, bottom=0)
            for x, n in notes:
                ax.text(x, floor * 1.3, f"{n} non-finite" if part == "elementwise" else
                        "non-finite", rotation=90, fontsize=6.5, color="red", ha="center",
                        va="bottom")
        ax.axhline(0.5, color="k", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_ylim(floor, max(10.0, ax.get_ylim()[1]))
        ax.set_xticks(range(len(libs)))
        ax.set_xticklabels(libs, fontsize=8)
        ax.set_ylabel("float32 ulps")
        ax.set_title(f"{op} (dotted: 0.5 ulp = correctly rounded)", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7, ncol=4, loc="upper left")
    fig.suptitle("Accuracy per library (float32 inputs; lower is better)", fontsize=10)
    fig.tight_layout()
    path = Path(out_dir) / "accuracy.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [str(path)]


def plot_latency(out_dir, results):
    lat = results.get("latency")
    recs = [r for r in (lat or {}).get("records", []) if "import_s" in r]
    if not recs:
        return []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(recs) + 1.2))
    names = [r.get("variant", r["library"]) for r in recs]
    parts = [("import_s", "import"), ("first_call_s", "first call"),
             ("second_call_s", "second call")]
    h = 0.8 / len(parts)
    for k, (key, label) in enumerate(parts):
        ax.barh([i - 0.4 + h * (k + 0.5) for i in range(len(recs))],
                [max(r[key], 1e-6) for r in recs], height=h, label=label)
    ax.set_yticks(range(len(recs)))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("First-call latency in a fresh process", fontsize=10)
    fig.tight_layout()
    path = Path(out_dir) / "latency.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [str(path)]


def plot_memory(out_dir, results):
    mem = results.get("memory")
    recs = [r for r in (mem or {}).get("records", []) if "extra_bytes" in r]
    if not recs:
        return []
    plt = _plt()
    cases = []
    for r in recs:
        if r["case"] not in cases:
            cases.append(r["case"])
    libs = _ordered({r["library"] for r in recs})
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(cases) + 3), 3.6))
    w = 0.8 / len(libs)
    for k, lib in enumerate(libs):
        xs, ys = [], []
        for i, c in enumerate(cases):
            r = next((r for r in recs if r["case"] == c and r["library"] == lib), None)
            if r:
                xs.append(i - 0.4 + w * (k + 0.5))
                ys.append(r["extra_bytes"] / 1e6)
        ax.bar(xs, ys, width=w, label=lib, color=_style(lib)["color"])
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([c.replace("|", "\n") for c in cases], fontsize=8)
    ax.set_ylabel("peak extra MB")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Peak extra memory of one call", fontsize=10)
    fig.tight_layout()
    path = Path(out_dir) / "memory.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [str(path)]


def plot_all(out_dir, results):
    try:
        _plt()
    except ImportError:
        return []
    files = []
    for f in (plot_throughput, plot_accuracy, plot_latency, plot_memory):
        files += f(out_dir, results)
    return files
