"""fastloss.evaluate / fastloss eval on half-precision dumps (issue #18): float16 and bfloat16
``.npy``, Arrow/Parquet ``halffloat`` columns, safetensors files. Each must score exactly
as the same predictions widened to float32 in memory (widening is exact) where the half
kernels give the float32 path's bits (rows of at most 32 classes), and exactly as the
in-memory functions on the half array where they look exp up in their tables."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from _zoo import half_dtypes

import fastloss as fl
from fastloss.evaluation.accumulator import LossAccumulator
from fastloss.evaluation.readers import InputError

HALF = half_dtypes()
IDS = [d.name for d in HALF]
OPTS = dict(loss=["sparse_categorical_cross_entropy", "categorical_cross_entropy"],
            from_logits=True)


def _data(dtype, n=1000, C=10, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, C)) * 3).astype(dtype)
    x[3, 2] = np.array(6e4).astype(dtype)  # near float16's largest: a loss of ~6e4
    y = rng.integers(0, C, n)
    y[3] = 0
    return x, y


def _figures(r):
    return ({k: r[k] for k in r}, r.n_rows, r.accuracy)


def _want(x, y, **kw):
    return _figures(fl.evaluate(x.astype(np.float32), labels=y, on_bad_row="skip",
                                loss="sparse_categorical_cross_entropy", from_logits=True, **kw))


def _eval(src, **kw):
    return _figures(fl.evaluate(src, on_bad_row="skip", loss="sparse_categorical_cross_entropy",
                                from_logits=True, **kw))


def _same(a, b):
    assert a[1] == b[1] and a[2] == b[2]
    assert a[0].keys() == b[0].keys()
    for k in a[0]:
        assert np.asarray(a[0][k]).tobytes() == np.asarray(b[0][k]).tobytes(), k


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_npy_and_arrays(tmp_path, dtype):
    x, y = _data(dtype)
    np.save(tmp_path / "p.npy", x)
    np.save(tmp_path / "y.npy", y)
    want = _want(x, y)
    _same(_eval(str(tmp_path / "p.npy"), labels=str(tmp_path / "y.npy"), chunk_rows=128), want)
    _same(_eval(x, labels=y, chunk_rows=300), want)


def test_bfloat16_npy_is_read_without_ml_dtypes(tmp_path):
    # ml_dtypes writes the descr '<V2'; a process without ml_dtypes sees raw two-byte voids
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x, y = _data(ml_dtypes.bfloat16)
    np.save(tmp_path / "p.npy", x)
    with open(tmp_path / "p.npy", "rb") as f:
        assert b"'descr': '<V2'" in f.read(128)
    raw = np.load(tmp_path / "p.npy")
    assert raw.dtype == np.dtype("V2")
    _same(_eval(raw, labels=y), _want(x, y))


@pytest.mark.parametrize("as_list", [True, False], ids=["list", "columns"])
def test_parquet_and_arrow_halffloat(tmp_path, as_list):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    x, y = _data(np.float16)
    if as_list:
        col = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), pa.float16()), 10)
        table = pa.table({"logits": col, "label": y})
    else:
        table = pa.table({**{f"p{j}": pa.array(x[:, j], pa.float16()) for j in range(10)},
                          "label": y})
    assert pa.types.is_float16(table.schema.field(0).type.value_type if as_list
                               else table.schema.field(0).type)
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=256)
    feather.write_feather(table, tmp_path / "d.feather")
    want = _want(x, y)
    _same(_eval(str(tmp_path / "d.parquet"), chunk_rows=100), want)
    _same(_eval(str(tmp_path / "d.feather"), chunk_rows=100), want)


def write_safetensors(path, tensors, code_of):
    """A safetensors file written by the format's spec (not by fastloss's reader)."""
    header, blobs, off = {"__metadata__": {"format": "test"}}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": code_of[name], "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_safetensors(tmp_path, dtype):
    x, y = _data(dtype)
    code = "F16" if dtype == np.float16 else "BF16"
    p = tmp_path / "out.safetensors"
    write_safetensors(p, {"labels": y, "logits": x}, {"labels": "I64", "logits": code})
    want = _want(x, y)
    _same(_eval(str(p), chunk_rows=64), want)
    _same(_eval(str(p), pred_column="logits", label_column="labels"), want)


def test_safetensors_errors(tmp_path):
    p = tmp_path / "bad.safetensors"
    x = np.zeros((4, 3), np.float32)
    write_safetensors(p, {"logits": x, "labels": np.zeros(4, np.int64)},
                      {"logits": "F8_E4M3", "labels": "I64"})
    with pytest.raises(InputError, match=r"bad.safetensors\[logits\]: dtype F8_E4M3"):
        _eval(str(p))
    write_safetensors(p, {"logits": x, "labels": np.zeros(4, np.int64)},
                      {"logits": "F32", "labels": "I64"})
    data = p.read_bytes()
    p.write_bytes(data[:-8])
    with pytest.raises(InputError, match="truncated"):
        _eval(str(p))
    p.write_bytes((10 ** 12).to_bytes(8, "little") + b"{}")
    with pytest.raises(InputError, match="not a safetensors file"):
        _eval(str(p))


def test_cli_reads_bfloat16_npy(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x, y = _data(ml_dtypes.bfloat16)
    np.save(tmp_path / "p.npy", x)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "fastloss.cli", "eval", str(tmp_path / "p.npy"),
                    "--labels", str(tmp_path / "y.npy"), "--loss", "sparse_categorical_cross_entropy",
                    "--from-logits", "--on-bad-row",
                    "skip", "--output", str(out)], check=True, capture_output=True,
                   env={**os.environ, "FASTLOSS_NUM_THREADS": "1"})
    doc = json.loads(out.read_text())
    want = _want(x, y)[0]["sparse_categorical_cross_entropy"]
    assert np.isfinite(want) and doc["losses"]["sparse_categorical_cross_entropy"] == float(want)



def test_wide_rows_score_as_the_in_memory_half_call(tmp_path):
    # rows of 50 classes: the Cython half kernels take exp from their tables, and a dump
    # read in chunks must give the in-memory function's bits on the same half array. Two
    # float16 rows (of a seeded draw) whose losses the table path rounds otherwise than the
    # float32 path does, so that widening the chunks would show
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((200_000, 50)) * 3).astype(np.float16)
    y = rng.integers(0, 50, 200_000)
    rows = [9696, 144923]
    x, y = x[rows], y[rows]
    np.save(tmp_path / "p.npy", x)
    np.save(tmp_path / "y.npy", y)
    f = fl.sparse_categorical_cross_entropy
    for backend in ("numpy", "numba", "cython"):
        want = f(y, x, from_logits=True, backend=backend)
        r = fl.evaluate(str(tmp_path / "p.npy"), labels=str(tmp_path / "y.npy"), chunk_rows=1,
                        backend=backend, loss="sparse_categorical_cross_entropy",
                        from_logits=True)
        assert np.float32(r["sparse_categorical_cross_entropy"]).tobytes() == want.tobytes()
        acc = LossAccumulator("sparse_categorical_cross_entropy", from_logits=True,
                              backend=backend)
        for i in range(len(y)):
            acc.update(y[i:i + 1], x[i:i + 1])
        assert np.asarray(acc.result()).tobytes() == want.tobytes()
        if backend == "cython":  # the rows still tell the two paths apart
            assert want != f(y, x.astype(np.float32), from_logits=True, backend=backend)
