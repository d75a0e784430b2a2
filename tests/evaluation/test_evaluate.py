"""fastloss.evaluate: every format, chunk-size independence, figures, diagnostics, bad files.

Loss expectations are the public functions on the whole arrays (bitwise); accuracy and
per-class / per-group figures are recomputed here with plain NumPy and exact sums.
"""

import json
import math
import os
import re
import zipfile

import numpy as np
import pytest

import fastloss
from fastloss.evaluation.driver import evaluate
from fastloss.evaluation.evaluator import Evaluator
from fastloss.evaluation.readers import InputError

pa = pytest.importorskip("pyarrow")
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.feather as feather  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

SCE = "sparse_categorical_cross_entropy"
N, C = 3000, 10


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def data():
    r = np.random.default_rng(2024)
    logits = (r.standard_normal((N, C)) * 3).astype(np.float32)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    y = r.integers(0, C, N)
    w = r.uniform(0, 2, N)
    g = r.choice(np.array(["de", "fr", "it", "jp"]), N)
    return dict(logits=logits, probs=probs, y=y, w=w, g=g)


def fixed_list(x):
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])


def write(fmt, d, tmp_path, pred="logits", layout="list"):
    """Write the dump in ``fmt``; returns (evaluate kwargs)."""
    x, y = d[pred], d["y"]
    p = tmp_path
    if fmt == "npy":
        np.save(p / "x.npy", x)
        np.save(p / "y.npy", y)
        return dict(source=str(p / "x.npy"), labels=str(p / "y.npy"))
    if fmt in ("npz", "npz-deflated"):
        save = np.savez if fmt == "npz" else np.savez_compressed
        save(p / "d.npz", y_pred=x, y_true=y)
        return dict(source=str(p / "d.npz"))
    cols = {"label": pa.array(y)}
    if layout == "list":
        cols["y_pred"] = fixed_list(x)
    elif layout == "varlist":
        cols["y_pred"] = pa.array(list(x))
    else:
        for j in range(x.shape[1]):
            cols[f"p{j}"] = pa.array(x[:, j])
    t = pa.table(cols)
    if fmt == "parquet":
        pq.write_table(t, p / "d.parquet", row_group_size=700)  # batches cross chunks
        return dict(source=str(p / "d.parquet"))
    if fmt == "feather":
        feather.write_feather(t, p / "d.feather", chunksize=333)
        return dict(source=str(p / "d.feather"))
    if fmt == "arrows":
        with pa.OSFile(str(p / "d.arrows"), "wb") as f, pa.ipc.new_stream(f, t.schema) as w:
            for b in t.to_batches(max_chunksize=512):
                w.write_batch(b)
        return dict(source=str(p / "d.arrows"))
    if fmt == "csv":
        pacsv.write_csv(t, p / "d.csv")
        return dict(source=str(p / "d.csv"))
    raise AssertionError(fmt)


FORMATS = [("npy", "list"), ("npz", "list"), ("npz-deflated", "list"), ("parquet", "list"),
           ("parquet", "columns"), ("parquet", "varlist"), ("feather", "list"),
           ("feather", "columns"), ("arrows", "list"), ("csv", "columns")]


@pytest.mark.parametrize("fmt,layout", FORMATS, ids=[f"{f}-{l}" for f, l in FORMATS])
def test_every_format_gives_the_in_memory_loss_bitwise(fmt, layout, data, tmp_path):
    kw = write(fmt, data, tmp_path, layout=layout)
    x, y = data["logits"], data["y"]
    if fmt == "csv":  # CSV text is parsed as float64: compare with what the file holds
        t = pacsv.read_csv(kw["source"])
        x = np.column_stack([t[f"p{j}"].to_numpy().astype(np.float64) for j in range(C)])
    want = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True)
    r = evaluate(kw.pop("source"), loss=SCE, from_logits=True, chunk_rows=500, **kw)
    assert same(r[SCE], want)
    assert r.n_rows == N
    assert r.accuracy == np.mean(np.argmax(x, axis=1) == y)


@pytest.mark.parametrize("fmt", ["npy", "parquet", "csv"])
def test_result_does_not_depend_on_the_chunk_size(fmt, data, tmp_path):
    # float64 values: their row-order sums depend on the grouping (float32 ones often not)
    kw = write(fmt, dict(data, probs=data["probs"].astype(np.float64)), tmp_path, pred="probs",
               layout="columns" if fmt == "csv" else "list")
    src = kw.pop("source")
    docs = [evaluate(src, loss=SCE, clip="keras", chunk_rows=c, **kw).to_dict()
            for c in (1, 300, 1024, 2999, None)]
    for d in docs[1:]:
        assert d == docs[0]  # every figure: losses, per-class sums, diagnostics
    assert docs[0]["per_class"][3]["losses"][SCE]["sum"] != 0


def exact_mean(v, w):
    from fractions import Fraction
    s = sum((Fraction(float(a)) for a in v), Fraction(0))
    t = sum((Fraction(float(a)) for a in w), Fraction(0))
    return float(s / t)


def test_per_class_per_group_and_weights(data, tmp_path):
    x, y, w, g = data["logits"], data["y"], data["w"], data["g"]
    t = pa.table({"y_pred": fixed_list(x), "label": y, "w": w, "country": g})
    pq.write_table(t, tmp_path / "d.parquet", row_group_size=1000)
    r = evaluate(str(tmp_path / "d.parquet"), loss=SCE, from_logits=True,
                 weight_column="w", group_column="country", chunk_rows=512)
    assert same(r[SCE], fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True,
                                                                   sample_weight=w))
    per = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True, sample_weight=w,
                                                    reduction="none")
    pred = np.argmax(x, axis=1)
    for row in r.per_class:
        k = row["class"]
        m = y == k
        assert row["rows"] == m.sum() and row["correct"] == (pred[m] == k).sum()
        assert row["predicted"] == (pred == k).sum()
        assert math.isclose(row["losses"][SCE]["mean"], exact_mean(per[m], w[m]), rel_tol=1e-12)
    assert [row["group"] for row in r.per_group] == ["de", "fr", "it", "jp"]
    for row in r.per_group:
        m = g == row["group"]
        assert row["rows"] == m.sum()
        assert row["accuracy"] == np.mean(pred[m] == y[m])
        assert math.isclose(row["losses"][SCE]["mean"], exact_mean(per[m], w[m]), rel_tol=1e-12)


def test_several_losses_in_one_pass_with_one_hot_targets(data, tmp_path):
    kw = write("npy", data, tmp_path, pred="probs")
    x, y = data["probs"], data["y"]
    onehot = np.eye(C, dtype=np.float32)[y]
    r = evaluate(kw.pop("source"), loss=[SCE, "categorical_cross_entropy", "mean_squared_error"],
                 clip="keras", chunk_rows=700, **kw)
    assert same(r[SCE], fastloss.sparse_categorical_cross_entropy(y, x, clip="keras"))
    assert same(r["categorical_cross_entropy"],
                fastloss.categorical_cross_entropy(onehot, x, clip="keras"))
    assert same(r["mean_squared_error"], fastloss.mean_squared_error(onehot, x))
    assert list(r) == [SCE, "categorical_cross_entropy", "mean_squared_error"]


def test_soft_targets_in_a_list_column(data, tmp_path):
    x = data["logits"]
    r = np.random.default_rng(3)
    t = r.dirichlet(np.ones(C), N).astype(np.float32)
    pq.write_table(pa.table({"y_pred": fixed_list(x), "y_true": fixed_list(t)}),
                   tmp_path / "d.parquet", row_group_size=900)
    res = evaluate(str(tmp_path / "d.parquet"), loss="categorical_cross_entropy",
                   from_logits=True, label_smoothing=0.05, chunk_rows=700)
    assert same(res["categorical_cross_entropy"],
                fastloss.categorical_cross_entropy(t, x, from_logits=True, label_smoothing=0.05))
    # per class: the class of a row is its target's argmax
    assert res.per_class[0]["rows"] == int((np.argmax(t, axis=1) == 0).sum())
    assert res.accuracy == np.mean(np.argmax(x, axis=1) == np.argmax(t, axis=1))


def test_binary_predictions_one_value_per_row(tmp_path):
    r = np.random.default_rng(1)
    x = r.standard_normal(5000).astype(np.float32)
    z = (r.random(5000) < 0.4).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "z.npy", z)
    res = evaluate(str(tmp_path / "x.npy"), labels=str(tmp_path / "z.npy"),
                   loss="binary_cross_entropy", from_logits=True, pos_weight=2.0, chunk_rows=1000)
    assert same(res["binary_cross_entropy"],
                fastloss.binary_cross_entropy(z, x, from_logits=True, pos_weight=2.0))
    assert res.accuracy == np.mean((x > 0) == (z > 0.5))
    assert [c["rows"] for c in res.per_class] == [int((z == 0).sum()), int((z == 1).sum())]


def test_multilabel_binary_per_column(tmp_path):
    r = np.random.default_rng(8)
    x = r.standard_normal((1000, 5)).astype(np.float32)
    z = (r.random((1000, 5)) < 0.3).astype(np.float32)
    res = evaluate(x, labels=z, loss="binary_cross_entropy", from_logits=True, chunk_rows=300)
    assert same(res["binary_cross_entropy"], fastloss.binary_cross_entropy(z, x, from_logits=True))
    per = fastloss.binary_cross_entropy(z, x, from_logits=True, reduction="none")
    for row in res.per_class:
        k = row["class"]
        assert math.isclose(row["losses"]["binary_cross_entropy"]["mean"], float(per[:, k].astype(
            np.float64).mean()), rel_tol=1e-12)
    assert res.accuracy is None


def test_ignore_index(data):
    x, y = data["logits"], data["y"].copy()
    y[::7] = -100
    r = evaluate(x, labels=y, loss=SCE, from_logits=True, ignore_index=-100, chunk_rows=256)
    assert same(r[SCE], fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True,
                                                                   ignore_index=-100))
    keep = y != -100
    assert r.diagnostics["ignored_rows"] == (~keep).sum()
    assert r.accuracy == np.mean(np.argmax(x[keep], axis=1) == y[keep])


def test_diagnostics_nonfinite_clipping_and_row_sums(data):
    x, y = data["probs"].copy(), data["y"]
    x[5, 2] = np.nan
    x[6, y[6]] = 0.0  # clipped (keras eps) and a zero probability
    x[7, :] = x[7, :] * 1.1  # sum 1.1
    x[8, 0] += 2e-3 / 1.0 if x[8, 0] < 0.9 else -2e-3  # sum off by 2e-3
    x[9, 1] = 1.0  # a row summing to ~2
    r = evaluate(x, labels=y, loss=SCE, clip="keras", chunk_rows=256)
    d = r.diagnostics
    assert d["nan_values"] == 1 and d["nonfinite_rows"] == 1
    assert d["posinf_values"] == 0 and d["neginf_values"] == 0
    lo, hi = np.float32(1e-7), np.float32(1) - np.float32(1e-7)
    p_y = x[np.arange(N), y]
    assert d["losses"][SCE]["clipped"] == int(((p_y < lo) | (p_y > hi)).sum()) >= 1
    sums = np.array([math.fsum(row.astype(np.float64)) for row in x])
    fin = np.isfinite(sums)
    assert d["rows_not_summing_to_one"] == int((np.abs(sums[fin] - 1) > 1e-3).sum()) >= 3
    assert d["losses"][SCE]["nan_losses"] == int(np.isnan(
        fastloss.sparse_categorical_cross_entropy(y, x, clip="keras", reduction="none")).sum())
    # logits: NaN / +inf anywhere and -inf at the label are counted
    lg = data["logits"].copy()
    lg[1, 3] = np.inf
    lg[2, y[2]] = -np.inf
    lg[3, :2] = np.nan
    lg[4, (y[4] + 1) % C] = -np.inf  # a masked class: the loss stays finite
    d = evaluate(lg, labels=y, loss=SCE, from_logits=True).diagnostics
    assert (d["nan_values"], d["posinf_values"], d["neginf_values"], d["nonfinite_rows"]) == \
        (2, 1, 1, 3)
    assert d["nonfinite_scope"] == "rows with NaN/+inf or a non-finite loss"
    # without the top-1 pass every value is checked, masked classes included
    r2 = evaluate(lg, labels=y, loss=SCE, from_logits=True, accuracy=False)
    d2 = r2.diagnostics
    assert (d2["nan_values"], d2["posinf_values"], d2["neginf_values"], d2["nonfinite_rows"]) \
        == (2, 1, 2, 4) and d2["nonfinite_scope"] == "all values"
    assert r2.accuracy is None and "accuracy" not in r2.per_class[0]
    assert sum(c["rows"] for c in r2.per_class) == N
    per = fastloss.sparse_categorical_cross_entropy(y, lg, from_logits=True, reduction="none")
    assert d["losses"][SCE]["inf_losses"] == np.isinf(per).sum() == 2
    assert d["losses"][SCE]["nan_losses"] == np.isnan(per).sum() == 1


def test_bad_labels_raise_naming_the_row_or_are_skipped(data, tmp_path):
    x, y = data["probs"], data["y"].copy()
    y[1234] = C
    y[2000] = -3
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(InputError, match=r"row 1234: label 10 is out of range \[0, 10\)"):
        evaluate(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), loss=SCE, chunk_rows=512)
    r = evaluate(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), loss=SCE,
                 on_bad_row="skip", chunk_rows=512)
    bad = r.diagnostics["bad_rows"]
    assert bad["count"] == 2 and bad["reasons"]["labels_out_of_range"] == 2
    assert bad["first_rows"] == [1234, 2000]
    # skipped rows weigh 0: the public function with those rows weighted 0
    w = np.ones(N)
    w[[1234, 2000]] = 0
    y0 = np.where((y < 0) | (y >= C), 0, y)
    assert same(r[SCE], fastloss.sparse_categorical_cross_entropy(y0, x, sample_weight=w))
    assert r.accuracy == np.mean((np.argmax(x, 1) == y0)[w > 0])


def test_bad_probabilities_and_weights(data):
    x, y = data["probs"].copy(), data["y"]
    x[42, 3] = 1.5
    with pytest.raises(InputError, match="row 42: predictions outside"):
        evaluate(x, labels=y, loss=SCE)
    w = data["w"].copy()
    w[7] = -1
    with pytest.raises(InputError, match="row 7: weight -1.0"):
        evaluate(data["probs"], labels=y, weights=w, loss=SCE)
    r = evaluate(x, labels=y, weights=w, loss=SCE, on_bad_row="skip")
    assert r.diagnostics["bad_rows"]["reasons"] == {
        "labels_out_of_range": 0, "non_integer_labels": 0, "targets_out_of_range": 0,
        "invalid_weights": 1, "probabilities_out_of_range": 1}
    w2 = w.copy()
    w2[[7, 42]] = 0
    xs = x.copy()
    xs[42] = 1.0 / C
    assert same(r[SCE], fastloss.sparse_categorical_cross_entropy(y, xs, sample_weight=w2))


# --------------------------------------------------------------------------- bad files


def test_truncated_and_corrupt_npy(data, tmp_path):
    np.save(tmp_path / "x.npy", data["logits"])
    np.save(tmp_path / "y.npy", data["y"])
    raw = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(raw[: len(raw) - 1000])
    with pytest.raises(InputError, match=r"t.npy: truncated .npy file.*2975 complete rows"):
        evaluate(str(tmp_path / "t.npy"), labels=str(tmp_path / "y.npy"), loss=SCE)
    (tmp_path / "c.npy").write_bytes(b"\x93NUMPX" + raw[6:])
    with pytest.raises(InputError, match="c.npy: not a valid .npy file"):
        evaluate(str(tmp_path / "c.npy"), labels=str(tmp_path / "y.npy"), loss=SCE)
    (tmp_path / "h.npy").write_bytes(raw[:20])
    with pytest.raises(InputError, match="h.npy: not a valid .npy file"):
        evaluate(str(tmp_path / "h.npy"), labels=str(tmp_path / "y.npy"), loss=SCE)


def test_truncated_and_corrupt_parquet(data, tmp_path):
    write("parquet", data, tmp_path)
    raw = (tmp_path / "d.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="t.parquet: not a readable Parquet file"):
        evaluate(str(tmp_path / "t.parquet"), loss=SCE, from_logits=True)
    # a corrupt data page (checksums on): found while reading, before any result
    t = pa.table({"y_pred": fixed_list(data["logits"]), "label": data["y"]})
    pq.write_table(t, tmp_path / "k.parquet", row_group_size=700, write_page_checksum=True,
                   compression="none")
    raw = bytearray((tmp_path / "k.parquet").read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(64)
    (tmp_path / "k.parquet").write_bytes(bytes(raw))
    with pytest.raises(InputError, match="k.parquet: read error"):
        evaluate(str(tmp_path / "k.parquet"), loss=SCE, from_logits=True)


def test_corrupt_npz(data, tmp_path):
    np.savez_compressed(tmp_path / "d.npz", y_pred=data["logits"], y_true=data["y"])
    raw = bytearray((tmp_path / "d.npz").read_bytes())
    (tmp_path / "t.npz").write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(InputError, match="t.npz: not a readable .npz archive"):
        evaluate(str(tmp_path / "t.npz"), loss=SCE, from_logits=True)
    with zipfile.ZipFile(tmp_path / "d.npz") as z:
        info = z.getinfo("y_pred.npy")
    start = info.header_offset + 30 + len(info.filename) + 200
    raw[start:start + 200] = bytes(200)  # damage the deflated stream
    (tmp_path / "c.npz").write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"c.npz(\[y_pred\])?: (corrupt|not a readable)"):
        evaluate(str(tmp_path / "c.npz"), loss=SCE, from_logits=True, chunk_rows=256)


def test_length_mismatch(data, tmp_path):
    np.save(tmp_path / "x.npy", data["logits"])
    np.save(tmp_path / "y.npy", data["y"][:-1])
    with pytest.raises(InputError, match=r"length mismatch: .*x.npy has 3000 rows but .*y.npy "
                                         r"has 2999 rows"):
        evaluate(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), loss=SCE)
    # CSV lengths are only known at the end: still an error, and no result
    pacsv.write_csv(pa.table({"label": data["y"][:2500]}), tmp_path / "y.csv")
    with pytest.raises(InputError, match="length mismatch: .*y.csv.* ends at row 2500"):
        evaluate(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.csv"), loss=SCE,
                 from_logits=True, chunk_rows=256)


def test_wrong_number_of_classes(data, tmp_path):
    x, y = data["logits"], data["y"]
    with pytest.raises(InputError, match="predictions have 10 columns but --num-classes is 12"):
        evaluate(x, labels=y, loss=SCE, from_logits=True, num_classes=12)
    t = np.eye(12, dtype=np.float32)[y]
    with pytest.raises(InputError, match="wrong number of classes: the labels have rows of shape"):
        evaluate(x, labels=t, loss="categorical_cross_entropy", from_logits=True)
    with pytest.raises(ValueError, match="class_weight has shape"):
        evaluate(x, labels=y, loss=SCE, from_logits=True, class_weight=np.ones(12))
    v = pa.array([list(r) for r in x[:10]] + [list(x[10, :9])])
    pq.write_table(pa.table({"y_pred": v, "label": y[:11]}), tmp_path / "v.parquet")
    with pytest.raises(InputError, match="different numbers of classes"):
        evaluate(str(tmp_path / "v.parquet"), loss=SCE, from_logits=True)


def test_prediction_columns_by_name_glob_and_default(data, tmp_path):
    x, y = data["logits"], data["y"]
    want = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True)
    cols = {f"prob_{j + 1}": pa.array(x[:, j]) for j in reversed(range(C))}  # 1-based, shuffled
    cols.update(label=pa.array(y), row_id=pa.array(np.arange(N)))
    pq.write_table(pa.table(cols), tmp_path / "d.parquet")
    src = str(tmp_path / "d.parquet")
    for spec in ("prob_*", [f"prob_{j + 1}" for j in range(C)]):
        assert same(evaluate(src, loss=SCE, from_logits=True, pred_column=spec)[SCE], want)
    # the default takes the numbered columns, never row_id
    r = evaluate(src, loss=SCE, from_logits=True)
    assert same(r[SCE], want) and r.to_dict()["inputs"]["pred"].endswith("[prob_1..prob_10]")
    cols.update({f"q{j}": pa.array(x[:, j]) for j in range(C)})  # two numbered groups
    pq.write_table(pa.table(cols), tmp_path / "e.parquet")
    with pytest.raises(InputError, match="which columns hold the predictions"):
        evaluate(str(tmp_path / "e.parquet"), loss=SCE, from_logits=True)


def test_options_are_checked(data):
    x, y = data["logits"], data["y"]
    with pytest.raises(TypeError, match="no requested loss takes the option 'log_input'"):
        evaluate(x, labels=y, loss=SCE, log_input=True)
    with pytest.raises(ValueError, match="not a fastloss loss"):
        evaluate(x, labels=y, loss="accuracy")
    with pytest.raises(ValueError, match="on_bad_row"):
        evaluate(x, labels=y, loss=SCE, on_bad_row="ignore")


# --------------------------------------------------------------------------- checkpoints


def test_resume_after_a_crash_is_bitwise_an_uninterrupted_run(data, tmp_path, monkeypatch):
    kw = write("parquet", data, tmp_path, layout="list")
    src = kw.pop("source")
    t = pq.read_table(src)
    t = t.append_column("g", pa.array(data["g"]))
    pq.write_table(t, src, row_group_size=700)
    args = dict(loss=SCE, from_logits=True, group_column="g", chunk_rows=256)
    want = evaluate(src, **args).to_dict()
    ck = tmp_path / "ck.json"
    orig = Evaluator.process
    calls = {"n": 0}

    def crash(self, ch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise MemoryError("simulated crash")
        return orig(self, ch)

    monkeypatch.setattr(Evaluator, "process", crash)
    with pytest.raises(MemoryError):
        evaluate(src, checkpoint=str(ck), checkpoint_every=3, **args)
    monkeypatch.setattr(Evaluator, "process", orig)
    saved = json.loads(ck.read_text())
    assert saved["state"]["next_row"] == 3 * 256  # the last save before the crash
    got = evaluate(src, checkpoint=str(ck), resume=True, chunk_rows=512,
                   **{k: v for k, v in args.items() if k != "chunk_rows"})
    assert got.to_dict() == want
    # a checkpoint of other inputs is refused
    pq.write_table(t.slice(0, 2000), src)
    with pytest.raises(InputError, match="made for other inputs or options"):
        evaluate(src, checkpoint=str(ck), resume=True, **args)


def test_in_memory_arrays_and_result_api(data):
    x, y = data["logits"], data["y"]
    r = evaluate(x, labels=y, loss=SCE, from_logits=True)
    assert same(r[SCE], fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True))
    assert dict(r) == {SCE: r[SCE]} and len(r) == 1
    doc = r.to_dict()
    json.dumps(doc, allow_nan=False)
    assert doc["losses"][SCE] == float(r[SCE])
    assert doc["loss_details"][SCE]["weight_sum"] == N
    table = r.format_table()
    assert SCE in table and "accuracy (top-1)" in table
    assert os.linesep not in table or True


def _backends():
    from fastloss._dispatch import available_backends

    return [b for b, (ok, _) in available_backends().items() if ok]


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("ls,zl", [(0.0, 0.0), (0.1, 0.0), (0.0, 1e-3)])
def test_nan_or_posinf_logit_gives_a_nonfinite_loss(backend, ls, zl):
    """The premise of the evaluation's NaN / inf screen on logits (``_nonfinite_fast``):
    with a non-zero weight, a row with a NaN or +inf logit anywhere (label or not) has a
    NaN or inf sparse cross-entropy, on every backend."""
    r = np.random.default_rng(5)
    for dt in (np.float32, np.float64):
        for c in (2, 10, 300):
            x = (r.standard_normal((4 * c, c)) * 3).astype(dt)
            y = r.integers(0, c, 4 * c)
            rows = np.arange(4 * c)
            cols = np.where(rows % 2 == 0, y, (y + 1 + rows % (c - 1 or 1)) % c)
            x[rows, cols] = np.where(rows % 4 < 2, np.nan, np.inf)
            x[rows[::3], (cols[::3] + 1) % c] = -np.inf  # -inf elsewhere changes nothing
            out = fastloss.sparse_categorical_cross_entropy(
                y, x, from_logits=True, label_smoothing=ls, z_loss=zl, reduction="none",
                backend=backend)
            assert not np.isfinite(out).any()


@pytest.mark.parametrize("c", [10, 100])  # the (true, predicted) bincount, and per class
def test_counts_with_nan_rows_and_any_chunking(c):
    """Accuracy and per-class counts (the confusion path up to 64 classes, the per-class
    path above), NaN rows never right, the same for every chunk size and the array."""
    r = np.random.default_rng(c)
    n = 5000
    x = (r.standard_normal((n, c)) * 2).astype(np.float32)
    y = r.integers(0, c, n)
    x[::97, 0] = np.nan  # argmax picks the NaN: class 0 predicted, never right
    y[::194] = 0
    x[5::89, 7] = np.inf
    x[3::61, 1] = -np.inf
    pred = x.argmax(axis=1)
    nanrow = np.isnan(x).any(axis=1)
    ok = (pred == y) & ~nanrow
    docs = [evaluate(x, labels=y, loss=SCE, from_logits=True, chunk_rows=k).to_dict()
            for k in (256, 1000, 4096, None)]
    for d in docs[1:]:
        assert d == docs[0]
    d = docs[0]
    assert d["accuracy"]["correct"] == int(ok.sum()) and d["accuracy"]["rows"] == n
    pc = d["per_class"]
    assert [p["rows"] for p in pc] == np.bincount(y, minlength=c).tolist()
    assert [p["predicted"] for p in pc] == np.bincount(pred, minlength=c).tolist()
    assert [p["correct"] for p in pc] == np.bincount(y[ok], minlength=c).tolist()
    dg = d["diagnostics"]
    assert dg["nan_values"] == int(np.isnan(x).sum())
    assert dg["posinf_values"] == int(np.isposinf(x).sum())
    per = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="none")
    assert dg["losses"][SCE]["nan_losses"] == int(np.isnan(per).sum())
    assert dg["losses"][SCE]["inf_losses"] == int(np.isinf(per).sum())
    assert same(evaluate(x, labels=y, loss=SCE, from_logits=True, chunk_rows=1000)[SCE],
                fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True))


def test_a_bad_checkpoint_location_is_an_error_before_the_pass(tmp_path):
    """Found when the pass starts, not at the first save (issue #19)."""
    x = np.zeros((10, 3), np.float32)
    y = np.zeros(10, np.int64)
    bad = tmp_path / "missing" / "ck.json"
    with pytest.raises(ValueError, match=rf"checkpoint {re.escape(str(bad))}: cannot write in "):
        fastloss.evaluate(x, labels=y, loss="sparse_categorical_cross_entropy",
                          from_logits=True, checkpoint=bad, progress=False)


@pytest.mark.parametrize("where", ["npy", "memory"])
def test_big_endian_inputs_give_the_native_bits(tmp_path, where):
    """Valid big-endian .npy files (and arrays) are read, not refused with a kernel message
    (issue #19): each window is byte-swapped into a native copy."""
    r = np.random.default_rng(3)
    x = (r.standard_normal((3000, 7)) * 3).astype(np.float32)
    y = r.integers(0, 7, 3000)
    w = r.random(3000)
    xb, yb, wb = x.astype(">f4"), y.astype(">i8"), w.astype(">f8")
    if where == "npy":
        for name, a in (("x", xb), ("y", yb), ("w", wb)):
            np.save(tmp_path / f"{name}.npy", a)
        xb, yb, wb = (str(tmp_path / f"{n}.npy") for n in "xyw")
    kw = dict(loss="sparse_categorical_cross_entropy", from_logits=True, progress=False,
              chunk_rows=512)
    got = fastloss.evaluate(xb, labels=yb, weights=wb, **kw)
    want = fastloss.evaluate(x, labels=y, weights=w, **kw)
    got_doc, want_doc = got.to_dict(), want.to_dict()
    got_doc.pop("inputs"), want_doc.pop("inputs")  # file names vs "<... array>"
    assert got_doc == want_doc
    direct = fastloss.sparse_categorical_cross_entropy(y, x, sample_weight=w, from_logits=True)
    assert got["sparse_categorical_cross_entropy"] == direct


# --------------------------------------------------------------------------- #19: bad cells named


def _csv(path, rows, header="p0,p1,p2,label"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return str(path)


def _good_rows(n=40):
    r = np.random.default_rng(3)
    x, y = r.random((n, 3)), r.integers(0, 3, n)
    return [f"{a:.4f},{b:.4f},{c:.4f},{lab}" for (a, b, c), lab in zip(x, y)]


@pytest.mark.parametrize("small_blocks", [False, True])
def test_csv_bad_cells_and_rows_are_named_by_line(tmp_path, monkeypatch, small_blocks):
    """Line numbers as an editor counts them (the header is line 1). With small blocks the
    bad cell is past the rows pyarrow guesses the column types from."""
    if small_blocks:
        from fastloss.evaluation.readers import Table

        monkeypatch.setattr(Table, "_csv_read", lambda self: pacsv.ReadOptions(block_size=300))
    cases = [
        (30, "0.1,abc,0.3,1", r"line 32: column 'p1' holds 'abc', not a number; fix that cell"),
        (25, "0.1,0.2,0.3", r"line 27: 3 fields where the header has 4; fix or delete"),
        (33, "0.1,0.2,0.3,cat", r"line 35: column 'label' holds 'cat', not a number"),
        (20, "0.1,0.2,0.7,1.5",
         r"\[label\], line 22: row 20: label 1.5 is not an integer class index \(use "
         r"--on-bad-row skip"),
    ]
    for i, (row, text, msg) in enumerate(cases):
        rows = _good_rows()
        rows[row] = text
        path = _csv(tmp_path / f"b{i}.csv", rows)
        with pytest.raises(InputError, match=re.escape(path) + r".*" + msg):
            evaluate(path, loss=SCE)
    # a blank line counts as a line (pyarrow skips it; the line numbers still match)
    rows = _good_rows()
    rows[5] = "\n" + rows[5]
    rows[30] = "0.1,abc,0.3,1"
    with pytest.raises(InputError, match="line 33: column 'p1' holds 'abc'"):
        evaluate(_csv(tmp_path / "blank.csv", rows), loss=SCE)


def test_csv_bad_cell_in_a_gzipped_file_and_good_missing_values(tmp_path):
    import gzip

    rows = _good_rows()
    rows[12] = "0.1,NA,0.3,1"  # missing: NaN, not an error (counted as a NaN prediction)
    rows[17] = "0.1,0.2,x.3,1"
    path = tmp_path / "g.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("p0,p1,p2,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"g.csv.gz: line 19: column 'p2' holds 'x.3'"):
        evaluate(str(path), loss=SCE)


def test_ragged_parquet_list_names_the_row(tmp_path):
    r = np.random.default_rng(4)
    x, y = r.random((40, 3)), r.integers(0, 3, 40)
    lists = [list(v) for v in x]
    lists[27] = lists[27][:2]
    pq.write_table(pa.table({"y_pred": lists, "label": y}), tmp_path / "r.parquet",
                   row_group_size=10)
    with pytest.raises(InputError, match=r"r.parquet\[y_pred\]: rows have different numbers of "
                                         r"classes: row 27 has 2 values where row \d+ has 3; "
                                         r"every row needs one value per class"):
        evaluate(str(tmp_path / "r.parquet"), loss=SCE, chunk_rows=256)
    with pytest.raises(InputError, match=r"row 27 has 2 values"):  # batches of 10 rows
        evaluate(str(tmp_path / "r.parquet"), loss=SCE, chunk_rows=1)
    pq.write_table(pa.table({"y_pred": [list(v) for v in x], "label": [str(v) for v in y]}),
                   tmp_path / "s.parquet")
    with pytest.raises(InputError, match=r"s.parquet\[label\]: the labels must be numeric, the "
                                         r"column has type string; write them as numbers"):
        evaluate(str(tmp_path / "s.parquet"), loss=SCE)


# --------------------------------------------------------------------------- #19: integrity


def test_npy_with_bytes_after_its_data_is_refused(data, tmp_path):
    np.save(tmp_path / "x.npy", data["logits"])
    with open(tmp_path / "x.npy", "ab") as f:
        f.write(b"\0" * 40)  # one float32 row more than the header says
    with pytest.raises(InputError, match=r"x.npy: 40 bytes after the data that the header "
                                         r"describes \(shape \(3000, 10\) float32"):
        evaluate(str(tmp_path / "x.npy"), labels=data["y"], loss=SCE, from_logits=True)


def test_npz_member_longer_or_shorter_than_its_header(data, tmp_path):
    import io

    x = data["logits"]
    for name, extra in (("long", x[:1].tobytes()), ("short", b"")):
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False,
                                                    "shape": (len(x) - (name == "short"), C)})
        body = x.tobytes() if name == "long" else x[:-2].tobytes()
        with zipfile.ZipFile(tmp_path / f"{name}.npz", "w") as z:
            z.writestr("y_pred.npy", head.getvalue() + body + extra)
            buf = io.BytesIO()
            np.save(buf, data["y"])
            z.writestr("y_true.npy", buf.getvalue())
        with pytest.raises(InputError, match=rf"{name}.npz\[y_pred\]: the member holds \d+ "
                                             r"bytes of data where its header .* says \d+"):
            evaluate(str(tmp_path / f"{name}.npz"), loss=SCE, from_logits=True)


def _parquet_footer_edit(src, dst, which):
    """Rewrite the row counts (zig-zag varints of 1000 -> 999) at the given occurrences of
    an i64 field holding 1000 in the Thrift footer: 0 the file's, -1 the row group's."""
    import struct

    raw = bytearray(src.read_bytes())
    footer = len(raw) - 8 - struct.unpack("<i", raw[-8:-4])[0]
    hits = [footer + m.start() for m in re.finditer(b"\x16\xd0\x0f", bytes(raw[footer:]))]
    for k in which:
        raw[hits[k] + 1:hits[k] + 3] = b"\xce\x0f"
    dst.write_bytes(bytes(raw))


def test_parquet_row_counts_are_checked_against_the_metadata(tmp_path):
    r = np.random.default_rng(6)
    x, y = r.standard_normal((1000, 4)).astype(np.float32), r.integers(0, 4, 1000)
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"y_pred": fixed_list(x), "label": y}), good, row_group_size=1000)
    _parquet_footer_edit(good, tmp_path / "a.parquet", [0])
    assert pq.ParquetFile(tmp_path / "a.parquet").metadata.num_rows == 999  # the edit took
    with pytest.raises(InputError, match="a.parquet: damaged Parquet metadata: the row groups "
                                         "hold 1000 rows but the file says 999"):
        evaluate(str(tmp_path / "a.parquet"), loss=SCE, from_logits=True)
    # both counts say 999: pyarrow alone reads 999 rows and drops one without a word
    _parquet_footer_edit(good, tmp_path / "b.parquet", [0, -1])
    assert pq.read_table(tmp_path / "b.parquet").num_rows == 999
    with pytest.raises(InputError, match="b.parquet: damaged Parquet metadata: row group 0 says "
                                         "999 rows but its column 'label' holds 1000 values"):
        evaluate(str(tmp_path / "b.parquet"), loss=SCE, from_logits=True)
    assert evaluate(str(good), loss=SCE, from_logits=True)[SCE] == \
        fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True)


# --------------------------------------------------------------------------- #19: wider search


def test_other_non_regular_inputs_are_named(data, tmp_path):
    import socket

    np.save(tmp_path / "y.npy", data["y"])
    y = str(tmp_path / "y.npy")
    os.symlink("loop.npy", tmp_path / "loop.npy")
    os.symlink("nowhere.npy", tmp_path / "dangling.npy")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s.npy"))
    try:
        cases = [
            ("/dev/null", "/dev/null: is a character device, not a regular file; give a regular "
                          "file"),
            (str(tmp_path / "s.npy"), "s.npy: is a socket, not a regular file"),
            (str(tmp_path), "is a directory, not a regular file; give one of its files"),
            (str(tmp_path / "loop.npy"), "loop.npy: is a symbolic link to 'loop.npy' that leads "
                                         "to no file (Too many levels of symbolic links)"),
            (str(tmp_path / "dangling.npy"), "dangling.npy: is a symbolic link to 'nowhere.npy' "
                                             "that leads to no file (No such file"),
        ]
        for path, msg in cases:
            with pytest.raises(InputError, match=re.escape(msg)):
                evaluate(path, labels=y, loss=SCE, from_logits=True)
    finally:
        sock.close()


def test_nan_label_in_a_float_label_column(data, tmp_path):
    y = data["y"].astype(np.float64)
    y[321] = np.nan
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "x.npy", data["logits"])
    args = (str(tmp_path / "x.npy"),)
    with pytest.raises(InputError, match=r"y.npy: row 321: label nan is not an integer class "
                                         r"index \(use --on-bad-row skip"):
        evaluate(*args, labels=str(tmp_path / "y.npy"), loss=SCE, from_logits=True)
    r = evaluate(*args, labels=str(tmp_path / "y.npy"), loss=SCE, from_logits=True,
                 on_bad_row="skip")
    assert r.diagnostics["bad_rows"]["reasons"]["non_integer_labels"] == 1
    assert r.diagnostics["bad_rows"]["first_rows"] == [321]
    w = np.ones(N)
    w[321] = 0
    y0 = np.where(np.isnan(y), 0, y).astype(np.int64)
    assert same(r[SCE], fastloss.sparse_categorical_cross_entropy(y0, data["logits"],
                                                                  from_logits=True, sample_weight=w))

