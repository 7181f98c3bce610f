"""Install figures (printed, not asserted), measured in one run with warm caches, against what a
user would type by hand:

  1. `nlpsetup install` of a local test tool vs `python -m venv` + `pip install` of the same wheels
     (target <= 1.15x), and with the uv backend vs `uv venv` + `uv pip install` (target <= 1.2x);
  2. with --pypi: `nlpsetup install spacy --backend uv` (smoke checks' own time set apart) vs
     `uv tool install spacy` (target <= 1.3x);
  3. three envs holding the same large wheel, built with the uv backend: disk used by the three
     (du counts hard links once) against one (target <= 1.5x);
  4. `nlpsetup doctor --quick` with ten envs (target < 1 s) and the full doctor (env checks in parallel).

Run: python benchmarks/bench_install.py [--runs N] [--pypi]
"""

from __future__ import annotations

import argparse
import json
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
import wheelhouse  # noqa: E402
from nlpsetup.resolve.backends import find_uv  # noqa: E402


def run(argv, env, cwd=None) -> float:
    t = time.perf_counter()
    p = subprocess.run([str(a) for a in argv], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, argv))}\n{p.stderr[-2000:]}")
    return time.perf_counter() - t


def median(f, runs):
    return statistics.median(f(i) for i in range(runs))


def smoke_seconds(home: Path, env: str) -> float:
    m = json.loads((home / "envs" / env / "nlpsetup.json").read_text())
    return sum(s["seconds"] for s in m["smoke"])


def du(*paths: Path) -> int:
    out = subprocess.run(["du", "-sck", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1].split()[0]) * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pypi", action="store_true", help="also measure spaCy from PyPI (network)")
    args = ap.parse_args()
    uv = find_uv()
    work = Path(tempfile.mkdtemp(prefix="nlpsetup-bench-"))
    kit = installkit.build(work / "kit")
    pyenv = sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")).glob("versions/3.12*/bin/python3"))
    py = str(pyenv[-1]) if pyenv else sys.executable
    home = work / "home"
    env = installkit.environ(kit, home)
    nlp = [sys.executable, "-m", "nlpsetup"]
    print(f"runs per figure: {args.runs} (median); interpreter for the envs: {py}")

    # 1. local test tool ---------------------------------------------------------------------
    def by_hand_pip(i):
        d = work / f"hand-pip-{i}"
        return run([py, "-m", "venv", d], env) + run([d / "bin" / "pip", "install", "-q", "tinytool==2.0.0"], env)

    def ours(backend):
        def f(i):
            name = f"{backend}-{i}"
            t = run([*nlp, "install", "tinytool", "--name", name, "--backend", backend, "--python", py], env)
            return t, smoke_seconds(home, name)
        return f

    def compare(label: str, by_hand: str, hand: float, backend: str, target: float) -> None:
        runs = [ours(backend)(i) for i in range(args.runs)]
        total = statistics.median(t for t, _ in runs)
        smoke = statistics.median(s for _, s in runs)
        print(f"local tool, {label} {by_hand:<34} {hand:6.2f} s")
        print(f"local tool, {label} {'nlpsetup install --backend ' + backend:<34} {total:6.2f} s  {total / hand:4.2f}x "
              f"(target <= {target}x); without its smoke checks ({smoke:.2f} s) {(total - smoke) / hand:4.2f}x")

    run([*nlp, "install", "tinytool", "--name", "warm", "--backend", "pip", "--python", py], env)  # warm caches
    compare("pip:", "python -m venv + pip install", median(by_hand_pip, args.runs), "pip", 1.15)
    if uv:
        def by_hand_uv(i):
            d = work / f"hand-uv-{i}"
            return run([uv, "venv", "-q", "-p", py, d], env) + run(
                [uv, "pip", "install", "-q", "--python", d / "bin" / "python", "--default-index", kit["index"],
                 "tinytool==2.0.0"], env)

        by_hand_uv(99)  # warm uv's cache
        compare("uv: ", "uv venv + uv pip install", median(by_hand_uv, args.runs), "uv", 1.2)

    # 3. three envs sharing one large wheel (uv links files from its cache) --------------------
    if uv:
        big_root = work / "big"
        blob = os.urandom(1024) * (60 * 1024)  # 60 MiB of incompressible-ish data in one module file
        whl = wheelhouse.build_wheel(big_root / "build", "bigwheel", "1.0.0",
                                     files={"bigwheel/__init__.py": "X = 1\n", "bigwheel/blob.bin": blob})
        url = wheelhouse.write_simple_index(big_root / "index", [whl])
        big_env = {**env, "PIP_INDEX_URL": url}
        recipes = work / "big-recipes"
        recipes.mkdir()
        (recipes / "bigwheel.toml").write_text(installkit.RECIPE.format(
            name="bigwheel", id="1", packages='"bigwheel==1.0.0"', extra="", smoke='imports = ["bigwheel"]', timeout=60))
        big_env["NLPSETUP_RECIPES_PATH"] = str(recipes)
        envs = []
        for i in range(3):
            run([*nlp, "install", "bigwheel", "--name", f"big{i}", "--backend", "uv", "--python", py], big_env)
            envs.append(home / "envs" / f"big{i}")
        one, three = du(envs[0]), du(*envs)
        print(f"3 envs with one 60 MiB wheel, uv backend: one env {one / 2**20:6.1f} MiB, three {three / 2**20:6.1f} MiB"
              f"  {three / one:4.2f}x one (target <= 1.5x; du counts hard links once)")

    # 4. doctor with ten envs ----------------------------------------------------------------
    doc_home = work / "doctor-home"
    doc_env = installkit.environ(kit, doc_home)
    backend = "uv" if uv else "pip"
    for i in range(10):
        run([*nlp, "install", "tinytool", "--name", f"e{i}", "--backend", backend, "--python", py], doc_env)
    quick = median(lambda i: run([*nlp, "doctor", "--quick"], doc_env), args.runs)
    full = median(lambda i: run([*nlp, "doctor"], doc_env), max(1, args.runs // 2))
    print(f"doctor --quick, 10 envs: {quick:6.2f} s (target < 1 s); full doctor, 10 envs in parallel: {full:6.2f} s")

    # 2. spaCy from PyPI ------------------------------------------------------------------------
    if args.pypi and uv:
        pypi_env = {k: v for k, v in env.items() if not k.startswith(("PIP_INDEX", "NLPSETUP_TORCH"))}
        pypi_env.pop("NLPSETUP_RECIPES_PATH", None)
        tools = work / "uv-tools"
        tool_env = {**pypi_env, "UV_TOOL_DIR": str(tools), "UV_TOOL_BIN_DIR": str(tools / "bin")}
        run([*nlp, "install", "spacy", "--name", "spwarm", "--backend", "uv"], pypi_env)  # warm uv's cache

        def uv_tool(i):
            t = run([uv, "tool", "install", "-q", "--force", "spacy"], tool_env)
            return t

        def ours_spacy(i):
            name = f"sp{i}"
            t = run([*nlp, "install", "spacy", "--name", name, "--backend", "uv"], pypi_env)
            return t - smoke_seconds(home, name)

        base = median(uv_tool, args.runs)
        mine = median(ours_spacy, args.runs)
        print(f"spaCy from PyPI, warm: uv tool install spacy     {base:6.2f} s")
        print(f"spaCy from PyPI, warm: nlpsetup install spacy (uv, smoke set apart) {mine:6.2f} s  "
              f"{mine / base:4.2f}x (target <= 1.3x)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
