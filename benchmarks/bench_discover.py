"""Discovery against a direct install (issue 24), on real PyPI: per package of the issue's development
set, `nlpsetup install PKG` in a fresh home (the search: attempts, seconds to a verified env), then
the winning combination installed directly from the recipe the search wrote, in another fresh home
(no search). The ratio is the search's overhead; the issue's target is a median of at most 3x.
Printed, not asserted. Users' view: no global pip config (PIP_CONFIG_FILE=/dev/null).

Run: python benchmarks/bench_discover.py [PKG ...]   (default: the whole development set)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEV_SET = ["textacy==0.9.1", "pytextrank==2.1.0", "sacremoses", "wordfreq", "pytorch-nlp", "spacy-udpipe",
           "langid", "bpemb", "sumy", "tokenizers==0.8.1"]


def nlpsetup(home: Path, *args: str) -> tuple[int, str, str, float]:
    """Each run with caches of its own, cold: the direct install gains nothing from the search's downloads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update({"NLPSETUP_HOME": str(home), "PIP_CONFIG_FILE": os.devnull, "NO_COLOR": "1",
                "UV_CACHE_DIR": str(home / "uv-cache"), "PIP_CACHE_DIR": str(home / "pip-cache")})
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "nlpsetup", *args], env=env, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - t


def one(spec: str, scratch: Path) -> dict:
    search_home, direct_home = scratch / "search", scratch / "direct"
    code, out, err, searched = nlpsetup(search_home, "install", spec, "--json")
    doc = json.loads(out) if out.strip().startswith("{") else {}
    row = {"package": spec, "exit": code, "attempts": len(doc.get("attempts", [])), "search_s": round(searched, 1)}
    if code != 0:
        return {**row, "why": (doc.get("error") or {}).get("message", err.strip().splitlines()[-1:])}
    winner = next(a["candidate"] for a in doc["attempts"] if a["ok"])
    row["winner"] = f"{winner['version']} py{winner['python']} {winner['as_of'] or 'latest'}"
    recipe = Path(doc["recipe"])
    target = direct_home / "recipes" / "discovered" / recipe.name
    target.parent.mkdir(parents=True)
    shutil.copy(recipe, target)
    code, _, err, direct = nlpsetup(direct_home, "install", spec.split("==")[0])
    row.update(direct_s=round(direct, 1), direct_exit=code, ratio=round(searched / direct, 2))
    return row


def main() -> None:
    rows = []
    for spec in sys.argv[1:] or DEV_SET:
        with tempfile.TemporaryDirectory(prefix="bench-discover-") as tmp:
            rows.append(one(spec, Path(tmp)))
        print(json.dumps(rows[-1]), flush=True)
    ratios = [r["ratio"] for r in rows if "ratio" in r]
    if ratios:
        print(f"verified {len(ratios)}/{len(rows)}; median search/direct ratio {statistics.median(ratios):.2f}x "
              f"(target <= 3x)")


if __name__ == "__main__":
    main()
