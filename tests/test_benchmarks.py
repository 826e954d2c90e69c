"""The load benchmark still runs end to end (tiny N): a benchmark that rots is a defect."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_load_benchmark_runs_both_bridges_and_no_call_loses_audio():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.load", "--calls", "2", "--seconds", "4", "--rounds", "1",
                           "--together"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| (ours|passthrough) \| 2 \|.*$", proc.stdout, re.M)}
    assert set(rows) == {"ours", "passthrough"}, proc.stdout
    for row in rows.values():
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[2].split()[0]) > 0  # CPU ms per call-second was measured
        assert cells[-1] == "0 / 2", row  # every byte arrived both ways
    assert "ours / pass-through CPU, round by round" in proc.stdout
