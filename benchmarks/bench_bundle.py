"""Offline bundle figures (printed, not asserted): for each tool, the bundle's size (its wheels, as
fetched) against the size of the env it builds, and the times of `bundle`, of `install
--from-bundle` with every index unreachable, and of a plain `install` from the index.

Default: the local index of tiny wheels (tests/installkit), fast and offline. `--pypi`: real
tools from PyPI as users get them (PIP_CONFIG_FILE=/dev/null, no PIP_FIND_LINKS).

Run: python benchmarks/bench_bundle.py [--pypi] [TOOL ...]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import installkit  # noqa: E402


def nlpsetup(env, *args) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "nlpsetup", *args], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: nlpsetup {' '.join(args)}\n{p.stderr[-2000:]}")
    return time.perf_counter() - t, p.stdout


def dead_index() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/simple"


def du(path: Path) -> int:
    seen, total = set(), 0
    for root, _, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(root, f))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tools", nargs="*")
    ap.add_argument("--pypi", action="store_true", help="real tools from PyPI (network)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nlpsetup-bench-bundle-"))
    home = work / "home"
    if a.pypi:
        env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS",)}
        env.update(NLPSETUP_HOME=str(home), PIP_CONFIG_FILE=os.devnull)
        tools = a.tools or ["spacy"]
    else:
        kit = installkit.build(work / "kit")
        env = installkit.environ(kit, home)
        tools = a.tools or ["nlpdemo", "tinytool"]
    dead = dead_index()
    offline = {**env, "PIP_INDEX_URL": dead, "UV_INDEX_URL": dead, "UV_DEFAULT_INDEX": dead,
               "NLPSETUP_TORCH_INDEX_URL": dead, "UV_CACHE_DIR": str(work / "empty-uv-cache")}
    rows = []
    for tool in tools:
        out = work / f"bundle-{tool}"
        t_bundle, js = nlpsetup(env, "bundle", tool, "-o", str(out), "--json")
        t_offline, _ = nlpsetup(offline, "install", "--from-bundle", str(out), "--name", f"{tool}-offline", "-q")
        t_online, _ = nlpsetup(env, "install", tool, "--name", f"{tool}-online", "-q")
        b = json.loads(js)
        env_bytes = du(home / "envs" / f"{tool}-offline")
        rows.append((tool, b["files"], b["size_bytes"], env_bytes, t_bundle, t_offline, t_online))
    print(f"{'tool':<12} {'wheels':>6} {'bundle MB':>10} {'env MB':>8} {'bundle/env':>10} "
          f"{'bundle s':>9} {'offline install s':>18} {'index install s':>16}")
    for tool, n, size, env_bytes, tb, to, tn in rows:
        print(f"{tool:<12} {n:>6} {size / 2**20:>10.1f} {env_bytes / 2**20:>8.1f} {size / max(env_bytes, 1):>10.2f} "
              f"{tb:>9.1f} {to:>18.1f} {tn:>16.1f}")
    print(f"(work folder: {work})")


if __name__ == "__main__":
    main()
