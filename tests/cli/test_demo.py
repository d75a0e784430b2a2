"""``fastloss demo``, the README's first command: it runs, agrees with NumPy, says what it is
doing before the work, and stays under 1 GB (issue #19: it used to peak at 4.0 GB)."""

import subprocess
import sys

# a fresh parent whose only child is the demo, so ru_maxrss of its children is the demo's peak
MEASURE = """
import resource, subprocess, sys
p = subprocess.run([sys.executable, "-m", "fastloss.cli", "demo"], capture_output=True, text=True)
sys.stdout.write(p.stdout)
sys.stderr.write(p.stderr)
print("peak_kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(p.returncode)
"""


def test_demo_runs_with_progress_and_bounded_memory():
    p = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    peak_kib = int(lines[-1].split()[1])
    assert peak_kib < 1_000_000_000 // 1024, f"peak RSS {peak_kib} KiB"
    assert lines[0].startswith("making a sample dump: 80000 rows x 1000 classes")
    assert lines[1].startswith("scoring it with fastloss")
    for name in ("sparse_categorical_cross_entropy", "binary_cross_entropy (logits)"):
        row = next(ln for ln in lines if ln.startswith(name))
        fl, _, np_, _, _ = row[len(name):].split()
        assert abs(float(fl) - float(np_)) <= 1e-6 * abs(float(np_))  # NumPy sums float32 rows
