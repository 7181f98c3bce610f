"""What a cutoff costs (issue 23): `plan` and `install` with the recipe's as_of and with
`--as-of latest`, side by side in one run, interleaved, on the local PEP 691/700 index the tests use
(tests/test_asof.py's agedtool, over HTTP), per backend. Printed, not asserted.

The cutoff adds one index request before an install (the PEP 700 check of the tool's page) and one
flag to the installer; on Python 3.8 with pip it adds a `uv pip compile` (shown as its own row).

Run: python benchmarks/bench_asof.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import installkit  # noqa: E402
from installkit import PY38  # noqa: E402
from nlpsetup.resolve.backends import find_uv  # noqa: E402
from test_asof import RECIPE  # noqa: E402


def index(root: Path) -> tuple[installkit.JsonIndex, Path]:
    dists = installkit.aged_dists(root / "build")
    recipes = root / "recipes"
    recipes.mkdir()
    # the same tool whose smoke passes either way, so that both columns time a whole install
    (recipes / "agedtool.toml").write_text(RECIPE.format(extra="", package="agedtool==1.0.0").replace(
        "import agedtool; assert agedtool.hello() == 'hello'", "import agedlib"))
    return installkit.JsonIndex(root / "index", dists), recipes


def timed(argv, env) -> float:
    t = time.perf_counter()
    p = subprocess.run(argv, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{p.stderr[-2000:]}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-asof-"))
    served, recipes = index(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": served.url, "NLPSETUP_RECIPES_PATH": str(recipes),
                "NLPSETUP_HOME": str(root / "home"), "UV_CACHE_DIR": str(root / "uv-cache"),
                "PIP_CACHE_DIR": str(root / "pip-cache"), "UV_NO_CONFIG": "1", "NO_COLOR": "1"})
    nlp = [sys.executable, "-m", "nlpsetup"]
    cells = [("plan", ["plan", "agedtool"])]
    backends = ["pip"] + (["uv"] if find_uv() else [])
    cells += [(f"install ({b})", ["install", "agedtool", "--force", "--backend", b]) for b in backends]
    if PY38.exists():
        cells.append(("install (pip, Python 3.8)", ["install", "agedtool", "--force", "--backend", "pip",
                                                     "--python", str(PY38)]))
    rows = []
    try:
        for name, cmd in cells:
            timed([*nlp, *cmd], env)  # warm the caches once for both columns
            dated, latest = [], []
            for _ in range(args.runs):  # interleaved, so that the machine's load falls on both alike
                dated.append(timed([*nlp, *cmd], env))
                latest.append(timed([*nlp, *cmd, "--as-of", "latest"], env))
            rows.append((name, statistics.median(dated), statistics.median(latest)))
    finally:
        served.close()
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'command':28} {'as_of (recipe)':>15} {'--as-of latest':>15} {'ratio':>6}   (median of {args.runs})")
    for name, dated, latest in rows:
        print(f"{name:28} {dated:14.2f}s {latest:14.2f}s {dated / latest:6.2f}")


if __name__ == "__main__":
    main()
