"""Verification figures (printed, not asserted), measured side by side in one run, warm caches,
real PyPI as users get it (PIP_CONFIG_FILE=/dev/null, no PIP_FIND_LINKS, uv's default cache):

  1. `nlpsetup install spacy` vs `uv tool install spacy` + the recipe's imports and code in the
     tool's interpreter (target <= 1.3x);
  2. `nlpsetup verify` of that env vs one bare interpreter running the recipe's imports and code
     (target <= 1.3x);
  3. `nlpsetup doctor --deep` with 3 real envs (spaCy, cookiecutter-data-science, datarobot) vs its
     floor: `doctor --quick` + the envs' verifies in parallel (the slowest one, or all their
     CPU-seconds over the cores, whichever is larger; target <= 1.2x), and `nlpsetup doctor` with
     unchanged envs (saved results; target < 1 s);
  4. `nlpsetup envs` with 20 envs (target < 0.3 s);
  5. `nlpsetup list --json` vs a bare `python -c pass` (target <= 6x);
  6. byte-compiling spaCy: install + first import + second import with uv, uv --compile-bytecode
     and pip (which compiles by default).

Run: python benchmarks/bench_verify.py [--runs N] [--no-compile-figures] [--doctor-home HOME (figure 3 only)]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
from nlpsetup.resolve.backends import find_uv  # noqa: E402

DOCTOR_ENVS = ["spacy", "cookiecutter-data-science", "datarobot"]
ROWS: list[tuple[str, float, str, float | None, str]] = []  # figure, seconds, baseline, its seconds, target


CPU = {"last": 0.0}  # CPU seconds (user + system) of the last command run, its children included


def run(argv, env, check=True) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run([str(a) for a in argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, argv))}\n{p.stderr[-2000:]}")
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["last"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds


def median(f, runs: int) -> float:
    return statistics.median(f(i) for i in range(runs))


def row(figure: str, seconds: float, baseline: str = "", base: float | None = None, target: str = "") -> None:
    ROWS.append((figure, seconds, baseline, base, target))
    ratio = f"{seconds / base:5.2f}x" if base else ""
    print(f"  {figure}: {seconds:.2f} s {('vs ' + baseline + f' {base:.2f} s ' + ratio) if base else ''}", flush=True)


def table() -> None:
    print("\n| figure | nlpsetup | baseline | ratio | target |\n|---|---|---|---|---|")
    for figure, seconds, baseline, base, target in ROWS:
        ratio = f"{seconds / base:.2f}x" if base else ""
        shown = f"{baseline} {base:.2f} s" if base else ""
        print(f"| {figure} | {seconds:.2f} s | {shown} | {ratio} | {target} |")


def smoke_program(home: Path, env: str) -> str:
    """The recipe's imports and code, as one bare interpreter would run them."""
    m = json.loads((home / "envs" / env / "nlpsetup.json").read_text())
    s = m["tools"][0]["smoke"]
    return "".join(f"import {name}\n" for name in s["imports"]) + s["code"]


def doctor_figures(nlp: list[str], env: dict, envs: list[str], runs: int) -> None:
    """`doctor --deep` against its floor, measured in turns (so load on the machine hits both alike):
    `doctor --quick` (the host checks) plus the envs' smoke checks in parallel, which take the
    slowest env's verify or all verifies' CPU-seconds over the cores, whichever is larger."""
    cores = os.cpu_count() or 1
    deep, quick, floor, cpu = [], [], [], {}
    for _ in range(runs):
        quick.append(run([*nlp, "doctor", "--quick"], env, check=False))
        single = {}
        for name in envs:
            single[name] = run([*nlp, "verify", name], env)
            cpu[name] = CPU["last"]
        floor.append(quick[-1] + max(max(single.values()), sum(cpu.values()) / cores))
        deep.append(run([*nlp, "doctor", "--deep"], env, check=False))
    print("  verify CPU: " + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items()) + f" on {cores} CPUs; "
          f"doctor --deep CPU {CPU['last']:.1f} s; load average {os.getloadavg()[0]:.2f}")
    row(f"doctor --deep, {len(envs)} envs", statistics.median(deep), "doctor --quick + parallel verify floor",
        statistics.median(floor), "<= 1.2x")
    print(f"  (doctor --quick alone: {statistics.median(quick):.2f} s)")
    again = median(lambda i: run([*nlp, "doctor"], env, check=False), runs)
    row(f"doctor, {len(envs)} unchanged envs", again, target="< 1 s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-compile-figures", action="store_true", help="skip figure 6 (pip install of spaCy)")
    ap.add_argument("--doctor-home", type=Path, help="only figure 3, with the envs already in this NLPSETUP_HOME")
    args = ap.parse_args()
    if args.doctor_home:
        env = {**os.environ, "NLPSETUP_HOME": str(args.doctor_home), "NO_COLOR": "1"}
        doctor_figures([sys.executable, "-m", "nlpsetup"], env, DOCTOR_ENVS, args.runs)
        return table()
    uv = find_uv()
    if not uv:
        raise SystemExit("uv is needed: pip install 'nlpsetup[uv]'")
    work = Path(tempfile.mkdtemp(prefix="nlpsetup-bench-verify-"))
    home = work / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_FIND_LINKS", "UV_", "NLPSETUP_"))}
    env.update({"PIP_CONFIG_FILE": os.devnull, "NLPSETUP_HOME": str(home), "NO_COLOR": "1"})
    exe = Path(sys.executable).with_name("nlpsetup")
    nlp = [str(exe)] if exe.exists() else [sys.executable, "-m", "nlpsetup"]
    plan = json.loads(subprocess.run([*nlp, "plan", "spacy", "--json"], env=env, capture_output=True, text=True,
                                     check=True).stdout)
    py = plan["python"]["path"]
    print(f"runs per figure: {args.runs} (median); spaCy's Python: {py}; load average {os.getloadavg()[0]:.2f}")

    # 1. install --------------------------------------------------------------------------------
    tools = work / "uv-tools"
    tool_env = {**env, "UV_TOOL_DIR": str(tools), "UV_TOOL_BIN_DIR": str(tools / "bin")}
    run([*nlp, "install", "spacy", "--name", "warm"], env)  # warm uv's cache
    program = smoke_program(home, "warm")
    run([uv, "tool", "install", "-q", "--python", py, "spacy"], tool_env)

    def uv_tool(i: int) -> float:
        run([uv, "tool", "uninstall", "spacy"], tool_env)
        return run([uv, "tool", "install", "-q", "--python", py, "spacy"], tool_env) + run(
            [tools / "spacy" / "bin" / "python", "-I", "-c", program], tool_env)

    base = median(uv_tool, args.runs)
    ours = median(lambda i: run([*nlp, "install", "spacy", "--name", f"sp{i}"], env), args.runs)
    row("install spacy (warm cache)", ours, "uv tool install spacy + the smoke import", base, "<= 1.3x")

    # 2. verify ---------------------------------------------------------------------------------
    sp_python = home / "envs" / "sp0" / "bin" / "python"
    bare = median(lambda i: run([sp_python, "-I", "-c", program], env), args.runs)
    verify = median(lambda i: run([*nlp, "verify", "sp0"], env), args.runs)
    row("verify spacy env", verify, "one bare interpreter: imports + code", bare, "<= 1.3x")

    # 3. doctor with real envs ------------------------------------------------------------------------
    doc_home = work / "doctor-home"
    doc_env = {**env, "NLPSETUP_HOME": str(doc_home)}
    for tool in DOCTOR_ENVS:
        run([*nlp, "install", tool], doc_env)
    doctor_figures(nlp, doc_env, DOCTOR_ENVS, args.runs)

    # 4. envs with 20 envs (the 6 real ones and 14 from the local index of tiny wheels) --------------
    kit = installkit.build(work / "kit")
    kit_env = {**installkit.environ(kit, doc_home), "UV_CACHE_DIR": str(work / "kit-uv-cache")}
    for i in range(14):
        run([*nlp, "install", "tinytool", "--name", f"tiny{i}", "--backend", "uv"], kit_env)
    n = len(list((doc_home / "envs").iterdir()))
    envs = median(lambda i: run([*nlp, "envs"], doc_env), max(5, args.runs))
    row(f"envs, {n} envs", envs, target="< 0.3 s")

    # 5. list --json ------------------------------------------------------------------------------
    run([*nlp, "list", "--json"], env)  # fills list's cache
    bare_py = median(lambda i: run([sys.executable, "-c", "pass"], env), 10)
    listing = median(lambda i: run([*nlp, "list", "--json"], env), 10)
    row("list --json", listing, "python -c pass", bare_py, "<= 6x")

    # 6. byte-compile: install + first import (and the second, which reads the .pyc) ----------------
    if not args.no_compile_figures:
        req = "spacy>=3.8,<3.9"

        def uv_way(flags):
            def f(i):
                d = work / f"bc-uv{len(flags)}-{i}"
                t = run([uv, "venv", "-q", "-p", py, d], env) + run(
                    [uv, "pip", "install", "-q", *flags, "--python", d / "bin" / "python", req], env)
                first = run([d / "bin" / "python", "-I", "-c", program], env)
                second = run([d / "bin" / "python", "-I", "-c", program], env)
                return t, first, second
            return f

        def pip_way(i):
            d = work / f"bc-pip-{i}"
            t = run([py, "-m", "venv", d], env) + run([d / "bin" / "pip", "install", "-q", req], env)
            return t, run([d / "bin" / "python", "-I", "-c", program], env), run(
                [d / "bin" / "python", "-I", "-c", program], env)

        pip_way(99)  # warm pip's cache
        for label, f, runs in (("uv pip install", uv_way([]), args.runs),
                               ("uv pip install --compile-bytecode", uv_way(["--compile-bytecode"]), args.runs),
                               ("pip install (compiles)", pip_way, 1)):
            got = [f(i) for i in range(runs)]
            t, first, second = (statistics.median(x[k] for x in got) for k in range(3))
            row(f"{label}: install + first import", t + first, target=f"install {t:.2f} s, first import "
                f"{first:.2f} s, second {second:.2f} s")
    table()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
