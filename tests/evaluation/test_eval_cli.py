"""``fastloss eval`` as a user runs it: a subprocess, killed, interrupted, resumed.

The reference for a resumed run is the same command run without interruption (its
JSON output, every field); the loss itself is checked against the public function.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import fastloss

SCE = "sparse_categorical_cross_entropy"
N, C = 20_000, 10
CHUNK = 256  # one segment: 79 chunks


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    d = tmp_path_factory.mktemp("dump")
    r = np.random.default_rng(99)
    x = (r.standard_normal((N, C)) * 3).astype(np.float32)
    y = r.integers(0, C, N)
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", y)
    return d, x, y


def cmd(d, *extra):
    return [sys.executable, "-m", "fastloss.cli", "eval", str(d / "x.npy"), "--labels",
            str(d / "y.npy"), "--loss", SCE, "--from-logits", "--chunk-rows", str(CHUNK),
            "--no-progress", *extra]


def run(args, env=None, **kw):
    e = dict(os.environ)
    e.pop("FASTLOSS_EVAL_THROTTLE", None)
    e.update(env or {})
    return subprocess.run(args, capture_output=True, text=True, env=e, timeout=300, **kw)


@pytest.fixture(scope="module")
def uninterrupted(dump):
    d, x, y = dump
    out = d / "full.json"
    p = run(cmd(d, "-o", str(out), "--quiet"))
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    want = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True)
    assert doc["losses"][SCE] == float(want)
    return doc


def wait_for_checkpoint(ck, proc, min_row):
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.stderr.read()}")
        try:
            row = json.loads(ck.read_text())["state"]["next_row"]
            if row >= min_row:
                return row
        except (OSError, ValueError, KeyError):
            pass  # not there yet (never half-written: os.replace)
        time.sleep(0.02)
    pytest.fail("no checkpoint appeared")


def test_killed_run_resumes_bitwise(dump, uninterrupted, tmp_path):
    d, _, _ = dump
    ck, out = tmp_path / "ck.json", tmp_path / "out.json"
    e = dict(os.environ, FASTLOSS_EVAL_THROTTLE="0.05")  # a slow disk: ~4 s in all
    proc = subprocess.Popen(cmd(d, "--checkpoint", str(ck), "--checkpoint-every", "2", "-o",
                                str(out)), env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    row = wait_for_checkpoint(ck, proc, 4 * CHUNK)
    proc.kill()  # SIGKILL: no chance to save anything more
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # no output from an interrupted run
    saved = json.loads(ck.read_text())["state"]["next_row"]
    assert row <= saved < N
    p = run(cmd(d, "--checkpoint", str(ck), "--resume", "-o", str(out), "--quiet"))
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text()) == uninterrupted
    assert not ck.exists()  # done: a later --resume starts afresh


def test_ctrl_c_saves_and_resumes_bitwise(dump, uninterrupted, tmp_path):
    d, _, _ = dump
    ck, out = tmp_path / "ck.json", tmp_path / "out.json"
    e = dict(os.environ, FASTLOSS_EVAL_THROTTLE="0.05")
    proc = subprocess.Popen(cmd(d, "--checkpoint", str(ck), "--checkpoint-every", "2", "-o",
                                str(out)), env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    row = wait_for_checkpoint(ck, proc, 2 * CHUNK)  # the pass is under way
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun with --resume" in err
    saved = json.loads(ck.read_text())["state"]["next_row"]  # saved at the end of a chunk
    assert row <= saved < N and saved % CHUNK == 0
    assert not out.exists()
    p = run(cmd(d, "--checkpoint", str(ck), "--resume", "-o", str(out), "--quiet",
                "--chunk-rows", "1000"))  # another chunk size after the resume: same result
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text()) == uninterrupted


def test_bad_files_fail_before_any_output(dump, tmp_path):
    d, x, y = dump
    out = tmp_path / "out.json"
    out.write_text("previous result\n")
    raw = (d / "x.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(raw[:-4000])
    np.save(tmp_path / "short.npy", y[:-5])
    np.save(tmp_path / "bad.npy", np.where(np.arange(N) == 777, C + 2, y))
    cases = [
        ([str(tmp_path / "t.npy"), "--labels", str(d / "y.npy")], "truncated .npy file"),
        ([str(d / "x.npy"), "--labels", str(tmp_path / "short.npy")], "length mismatch"),
        ([str(d / "x.npy"), "--labels", str(tmp_path / "bad.npy")],
         r"row 777: label 12 is out of range [0, 10)"),
        ([str(d / "x.npy"), "--labels", str(d / "y.npy"), "--num-classes", "5"],
         "wrong number of classes"),
        ([str(d / "nope.npy"), "--labels", str(d / "y.npy")], "no such file"),
    ]
    for args, msg in cases:
        p = run([sys.executable, "-m", "fastloss.cli", "eval", *args, "--loss", SCE,
                 "--from-logits", "-o", str(out)])
        assert p.returncode == 2, (args, p.stderr)
        assert msg in p.stderr and p.stderr.startswith("fastloss: error:"), p.stderr
        assert p.stdout == ""
        assert out.read_text() == "previous result\n"  # untouched
    # --on-bad-row skip counts the row instead
    p = run([sys.executable, "-m", "fastloss.cli", "eval", str(d / "x.npy"), "--labels",
             str(tmp_path / "bad.npy"), "--loss", SCE, "--from-logits", "--on-bad-row", "skip",
             "--json"])
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["diagnostics"]["bad_rows"]["count"] == 1
    assert doc["diagnostics"]["bad_rows"]["first_rows"] == [777]


def test_table_json_and_progress(dump, uninterrupted):
    d, _, _ = dump
    p = run(cmd(d))
    assert p.returncode == 0
    assert SCE in p.stdout and "accuracy (top-1)" in p.stdout and "per class" in p.stdout
    assert p.stderr == ""  # not a terminal: no progress bar
    p = run(cmd(d, "--json", "--progress"))
    assert json.loads(p.stdout)["losses"] == uninterrupted["losses"]
    assert "rows" in p.stderr  # the tqdm bar, forced on


def test_loss_options_as_flags(dump, tmp_path):
    d, x, y = dump
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p_ = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    np.save(tmp_path / "p.npy", p_)
    cw = ",".join(str(v) for v in np.linspace(0.5, 2, C))
    p = run([sys.executable, "-m", "fastloss.cli", "eval", str(tmp_path / "p.npy"), "--labels",
             str(d / "y.npy"), "--loss", f"{SCE},categorical_cross_entropy", "--clip", "keras",
             "--label-smoothing", "0.1", "--class-weight", cw, "--json"])
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    kw = dict(clip="keras", label_smoothing=0.1, class_weight=np.linspace(0.5, 2, C))
    assert doc["losses"][SCE] == float(fastloss.sparse_categorical_cross_entropy(y, p_, **kw))
    onehot = np.eye(C, dtype=np.float32)[y]
    assert doc["losses"]["categorical_cross_entropy"] == float(
        fastloss.categorical_cross_entropy(onehot, p_, **kw))
    p = run([sys.executable, "-m", "fastloss.cli", "eval", str(tmp_path / "p.npy"), "--labels",
             str(d / "y.npy"), "--loss", SCE, "--log-input"])
    assert p.returncode == 2 and "no requested loss takes the option 'log_input'" in p.stderr


def test_registered_in_the_main_parser():
    from fastloss.cli import build_parser

    args = build_parser().parse_args(["eval", "x.npy", "--loss", SCE, "--from-logits"])
    assert args.func.__module__ == "fastloss.cli.eval" and args.from_logits is True


# --------------------------------------------------------------------------- large dumps


# VmHWM: the peak RSS of this process image (ru_maxrss would include the forked copy
# of the test process from before exec, as Linux carries it across execve)
_PEAK_SCRIPT = (
    "import sys\n"
    "from fastloss.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    "print('PEAK_RSS_KB', hwm.split()[1], file=sys.stderr)\n"
    "sys.exit(rc)\n")


def _run_big(args):
    p = subprocess.run(args, capture_output=True, text=True, timeout=3600,
                       env={k: v for k, v in os.environ.items()
                            if k != "FASTLOSS_EVAL_THROTTLE"})
    return p.returncode, p.stdout, p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_multi_gb_dump_peak_rss_under_512_mb(fmt, tmp_path):
    """A dump of several GB (4 GB .npy, 2 GB Parquet) streams in < 512 MB peak RSS."""
    rows, classes = (1_000_000, 1000) if fmt == "npy" else (500_000, 1000)
    r = np.random.default_rng(0)
    y = r.integers(0, classes, rows)
    np.save(tmp_path / "y.npy", y)
    if fmt == "npy":
        x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                      shape=(rows, classes))
        for a in range(0, rows, 50_000):
            x[a:a + 50_000] = r.standard_normal((min(50_000, rows - a), classes),
                                                dtype=np.float32) * 3
        x.flush()
        del x
        src = tmp_path / "x.npy"
        labels = ["--labels", str(tmp_path / "y.npy")]
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("y_pred", pa.list_(pa.float32(), classes)), ("label", pa.int64())])
        src = tmp_path / "x.parquet"
        with pq.ParquetWriter(src, schema, compression="none") as w:
            for a in range(0, rows, 50_000):
                xb = r.standard_normal((min(50_000, rows - a), classes), dtype=np.float32) * 3
                w.write_table(pa.table({
                    "y_pred": pa.FixedSizeListArray.from_arrays(pa.array(xb.reshape(-1)), classes),
                    "label": y[a:a + xb.shape[0]]}, schema=schema), row_group_size=50_000)
        labels = []
    args = [sys.executable, "-c", _PEAK_SCRIPT, "eval", str(src), *labels, "--loss", SCE,
            "--from-logits", "--json", "--no-progress"]
    rc, out, err = _run_big(args)
    assert rc == 0, err
    peak_mb = int(err.split("PEAK_RSS_KB")[1].split()[0]) / 1024
    print(f"\n{fmt}: {os.path.getsize(src) / 1e9:.2f} GB dump, peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 512
    doc = json.loads(out)
    assert doc["rows"] == rows
    if fmt == "npy":
        xm = np.load(src, mmap_mode="r")
        want = fastloss.sparse_categorical_cross_entropy(y, xm, from_logits=True)
        assert doc["losses"][SCE] == float(want)


EVERY_LOSS = [  # (loss, prediction file, label file, flags)
    (SCE, "logits", "labels", ["--from-logits"]),
    ("categorical_cross_entropy", "logits", "labels", ["--from-logits"]),
    ("categorical_cross_entropy", "probs", "targets", []),
    ("binary_cross_entropy", "logits", "targets", ["--from-logits"]),  # multi-label
    ("binary_cross_entropy", "logits", "labels", ["--from-logits"]),  # one-hot of labels
    ("kl_divergence", "probs", "probs", []),
    ("mean_squared_error", "logits", "targets", []),
]


@pytest.fixture(scope="module")
def dense_dump(tmp_path_factory):
    """20M x 10 float32 logits, probabilities and 0/1 targets (0.8 GB each), int64 labels."""
    d = tmp_path_factory.mktemp("dense")
    rows, classes, step = 20_000_000, 10, 1_000_000
    r = np.random.default_rng(5)
    maps = {name: np.lib.format.open_memmap(d / f"{name}.npy", mode="w+", dtype=np.float32,
                                            shape=(rows, classes))
            for name in ("logits", "probs", "targets")}
    y = np.lib.format.open_memmap(d / "labels.npy", mode="w+", dtype=np.int64, shape=(rows,))
    for a in range(0, rows, step):
        z = r.standard_normal((step, classes), dtype=np.float32) * 3
        maps["logits"][a:a + step] = z
        e = np.exp(z - z.max(axis=1, keepdims=True))
        maps["probs"][a:a + step] = e / e.sum(axis=1, keepdims=True)
        maps["targets"][a:a + step] = r.random((step, classes)) < 0.3
        y[a:a + step] = r.integers(0, classes, step)
    for m in (*maps.values(), y):
        m.flush()
    del maps, y
    return d


@pytest.mark.slow
@pytest.mark.parametrize("loss,pred,labels,flags", EVERY_LOSS)
def test_every_loss_streams_under_the_readme_bound(dense_dump, loss, pred, labels, flags):
    """The README's bound (~350 MB) holds for every loss, element-wise ones included
    (binary cross-entropy peaked at 1.7 GB on 0.8 GB inputs: a float64 copy of every chunk)."""
    d = dense_dump
    rc, out, err = _run_big([sys.executable, "-c", _PEAK_SCRIPT, "eval", str(d / f"{pred}.npy"),
                             "--labels", str(d / f"{labels}.npy"), "--loss", loss, *flags,
                             "--json", "--no-progress"])
    assert rc == 0, err
    peak_mb = int(err.split("PEAK_RSS_KB")[1].split()[0]) / 1024
    print(f"\n{loss} {pred}/{labels}: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 350
    assert json.loads(out)["rows"] == 20_000_000


# --------------------------------------------------------------------------- issue #19: bad paths


def test_a_fifo_as_input_is_refused_at_once(dump, tmp_path):
    d, _, _ = dump
    fifo = tmp_path / "f.npy"
    os.mkfifo(fifo)
    p = run([sys.executable, "-m", "fastloss.cli", "eval", str(fifo), "--labels",
             str(d / "y.npy"), "--loss", SCE, "--from-logits", "--no-progress"])  # hung before
    assert p.returncode == 2
    assert f"{fifo}: is a FIFO (named pipe), not a regular file" in p.stderr


def test_a_directory_as_input_is_refused(dump):
    d, _, _ = dump
    p = run([sys.executable, "-m", "fastloss.cli", "eval", str(d), "--labels", str(d / "y.npy"),
             "--loss", SCE, "--from-logits", "--no-progress"])
    assert p.returncode == 2 and f"{d}: is a directory, not a regular file" in p.stderr


@pytest.mark.parametrize("option", ["-o", "--checkpoint"])
def test_a_bad_output_location_is_found_before_the_run(dump, tmp_path, option):
    d, _, _ = dump
    name = "--output" if option == "-o" else "--checkpoint"
    missing = tmp_path / "no" / "such" / "r.json"
    env = {"FASTLOSS_EVAL_THROTTLE": "0.5"}  # a run would take 79 x 0.5 s: the error must not
    t0 = time.time()
    p = run(cmd(d, option, str(missing)), env=env)
    assert p.returncode == 2 and time.time() - t0 < 30
    assert f"{name} {missing}: cannot write in {missing.parent}" in p.stderr
    assert ".tmp" not in p.stderr and ".probe" not in p.stderr
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    p = run(cmd(d, option, str(fifo)), env=env)
    assert p.returncode == 2 and f"{name} {fifo}: is a FIFO (named pipe)" in p.stderr
    p = run(cmd(d, option, str(tmp_path)), env=env)
    assert p.returncode == 2 and f"{name} {tmp_path}: is a directory" in p.stderr


def test_result_files_honour_the_umask(dump, tmp_path):
    d, _, _ = dump
    out = tmp_path / "r.json"
    old = os.umask(0o022)
    try:
        p = run(cmd(d, "-o", str(out), "--quiet"))
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # not mkstemp's 0600
    out.chmod(0o640)  # an existing file keeps its mode, as with open(path, "w")
    assert run(cmd(d, "-o", str(out), "--quiet")).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def _unprivileged():
    """A command prefix under which file permissions apply: as root, one without the
    capabilities that bypass them (setpriv); None if that cannot be had here."""
    if os.geteuid() != 0:
        return []
    import shutil

    if shutil.which("setpriv") is None:
        return None
    pre = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    if subprocess.run(pre + ["true"], capture_output=True).returncode != 0:
        return None
    return pre


def test_unreadable_input_and_unwritable_output_are_named(dump, tmp_path):
    pre = _unprivileged()
    if pre is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    d, _, _ = dump
    secret = tmp_path / "secret.npy"
    secret.write_bytes((d / "x.npy").read_bytes())
    secret.chmod(0)
    base = [sys.executable, "-m", "fastloss.cli", "eval", "--loss", SCE, "--from-logits",
            "--no-progress", "--labels", str(d / "y.npy")]
    p = run(pre + base + [str(secret)])
    assert p.returncode == 2 and f"{secret}: cannot read: Permission denied" in p.stderr, p.stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        p = run(pre + base + [str(d / "x.npy"), "-o", str(locked / "r.json")])
        assert p.returncode == 2, p.stderr
        assert f"--output {locked / 'r.json'}: cannot write in {locked}: Permission denied" \
            in p.stderr
        assert p.stdout == ""  # refused before the pass
    finally:
        locked.chmod(0o755)


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs filled up (needs root and mount); skipped where it cannot be made."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        with open(mnt / "fill", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_full_disk_loses_no_result(dump, full_disk, uninterrupted):
    d, _, _ = dump
    out = full_disk / "r.json"
    p = run(cmd(d, "-o", str(out), "--quiet"))
    assert p.returncode == 2
    assert f"--output {out}: cannot write: No space left on device; the result is printed on " \
           "stdout instead" in p.stderr
    assert json.loads(p.stdout) == uninterrupted  # the pass's result, not lost
    assert os.listdir(full_disk) == ["fill"]  # no temp file left behind
    ck = full_disk / "ck.json"
    p = run(cmd(d, "--checkpoint", str(ck), "--checkpoint-every", "1", "--quiet"))
    assert p.returncode == 2
    assert f"checkpoint {ck}: cannot save the state: No space left on device" in p.stderr
