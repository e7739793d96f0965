"""docs/results.md is generated from benchmarks/results/*.json: a figure changed in one place only fails here."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_results_page_is_what_the_benchmark_json_gives():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "results_page.py"), "--check"], cwd=ROOT)
    assert done.returncode == 0, "docs/results.md is stale: run python scripts/results_page.py"
