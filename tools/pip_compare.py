"""Compare `nlpsetup plan` for simulated hosts with pip's binary-only resolution.

For every (tool, platform, arch, Python) cell this asks `nlpsetup plan` for a
verdict, then asks pip whether a binary-only install exists for that target:

    pip install --dry-run --ignore-installed --only-binary=:all:
        --platform TAG... --python-version V --implementation cp --abi cpXY
        -c constraints.txt REQS --report -

with PIP_CONFIG_FILE=/dev/null and PIP_FIND_LINKS unset, against PyPI.

pip evaluates environment markers (sys_platform, platform_machine,
python_version, ...) against the interpreter running it, not against
--platform/--python-version.  So pip is run through a small shim (this file
with --pip-shim) that swaps pip's marker environment for the target's before
calling pip's own main(); everything else is pip as shipped.

A dependency with no wheel for the target but an sdist (langdetect, seqeval,
...) is built once into a wheel with no C compiler; a pure-Python one
(py*-none-any) is then offered to pip with --find-links, since uv and pip
build it the same way on any target.
An sdist that compiles (gluonnlp) is not: its cell agrees only where the plan
says what it needs ("needs cc"), and is a false yes otherwise.

Framework steps point at download.pytorch.org, which this machine cannot
reach: their requirements are resolved from PyPI instead (marked
"torch_from_pypi" in the results).

Cells:
  agree-yes          plan yes, pip finds a binary install
  agree-no           plan refuses, pip finds none for the variants tried
  agree-builds       plan yes and says it compiles (needs cc); pip finds a
                     binary install but for that sdist
  false-yes          plan yes, pip finds no binary install ("missing" names the
                     package pip could not find, "sdist_compiled" the sdists
                     in the way that need a compiler)
  false-refusal      plan refuses, pip finds one, refusal reason has no "why"
  documented-refusal plan refuses, pip finds one, but the reason explains why
  pip-timeout / pip-error / plan-error
  refusal-untested   plan refuses and no host accepts the variants, so no reqs

Results are cached in --out (JSON), so a re-run resumes.

    python tools/pip_compare.py --pip-python /tmp/pipcmp/venv/bin/python
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

NLPSETUP = "/work/main/.venv/bin/nlpsetup"
INDEX = "https://pypi.org/simple"

PLATFORMS = [
    ("linux", "x86_64"),
    ("linux", "aarch64"),
    ("macos", "x86_64"),
    ("macos", "arm64"),
    ("windows", "x86_64"),
]
# Order matters: the first Pythons are measured first.
PYTHONS = ["3.9", "3.11", "3.13", "3.10", "3.12", "3.8", "3.14"]
FULL_VERSION = {"3.8": "3.8.20", "3.9": "3.9.25", "3.10": "3.10.19",
                "3.11": "3.11.14", "3.12": "3.12.12", "3.13": "3.13.9",
                "3.14": "3.14.0"}

# uv/pip options of `install` that take a value (skipped when reading reqs).
VALUE_OPTS = {
    "--python", "-p", "--default-index", "--index-url", "-i",
    "--extra-index-url", "--index", "--find-links", "-f", "-c", "--constraint",
    "--constraints", "-r", "--requirement", "--index-strategy", "--prerelease",
    "--torch-backend", "--python-platform", "--python-version", "--resolution",
    "--exclude-newer", "--override", "--overrides", "--config-settings", "-C",
    "--target", "--prefix", "--no-binary", "--only-binary", "--cache-dir",
}


# --- targets -------------------------------------------------------------

def platform_tags(plat: str, arch: str) -> list[str]:
    if plat == "linux":
        tags = [f"manylinux_2_{m}_{arch}" for m in range(39, 16, -1)]
        return tags + [f"manylinux2014_{arch}", f"linux_{arch}"]
    if plat == "macos":
        if arch == "x86_64":
            versions = [f"10_{m}" for m in range(9, 16)] + [f"{m}_0" for m in range(11, 15)]
        else:
            versions = [f"{m}_0" for m in range(11, 16)]
        tags = []
        for v in versions:
            tags += [f"macosx_{v}_{arch}", f"macosx_{v}_universal2"]
        return tags
    return ["win_arm64"] if arch in ("arm64", "aarch64") else ["win_amd64"]


def marker_env(plat: str, arch: str, py: str) -> dict[str, str]:
    full = FULL_VERSION[py]
    machine = {"windows": {"x86_64": "AMD64", "arm64": "ARM64"},
               "macos": {"x86_64": "x86_64", "arm64": "arm64"},
               "linux": {"x86_64": "x86_64", "aarch64": "aarch64"}}[plat][arch]
    system, sys_platform, os_name = {"linux": ("Linux", "linux", "posix"),
                                     "macos": ("Darwin", "darwin", "posix"),
                                     "windows": ("Windows", "win32", "nt")}[plat]
    return {"implementation_name": "cpython", "implementation_version": full,
            "os_name": os_name, "platform_machine": machine,
            "platform_release": "", "platform_system": system,
            "platform_version": "", "python_full_version": full,
            "platform_python_implementation": "CPython",
            "python_version": py, "sys_platform": sys_platform}


# --- nlpsetup ------------------------------------------------------------

def run_plan(tool, plat, arch, py, variant=None):
    argv = [NLPSETUP, "plan", tool, "--platform", plat, "--arch", arch,
            "--python", py, "--json"]
    if variant:
        argv[3:3] = ["--variant", variant]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = {"error": {"message": (proc.stderr or proc.stdout).strip()[-300:]}}
    return proc.returncode, doc


def plan_requirements(plan: dict) -> dict:
    """Requirements of the framework/install steps, constraints and flags."""
    reqs, pre, from_pytorch, no_deps = [], False, False, False
    for step in plan.get("steps", []):
        if step["name"] in ("create", "seed"):
            continue
        argv = step["argv"]
        if "install" not in argv:
            continue
        args = argv[argv.index("install") + 1:]
        i = 0
        while i < len(args):
            a = args[i]
            if a in VALUE_OPTS:
                if a in ("--default-index", "--index-url", "-i", "--extra-index-url",
                         "--index") and "pytorch.org" in args[i + 1]:
                    from_pytorch = True
                if a == "--prerelease" and args[i + 1] in ("allow", "if-necessary"):
                    pre = True
                i += 2
                continue
            if a == "--pre":
                pre = True
            elif a == "--no-deps":
                no_deps = True
            elif not a.startswith("-"):
                reqs.append(a)
            i += 1
    return {"reqs": reqs, "constraints": plan.get("constraints", []), "pre": pre,
            "torch_from_pypi": from_pytorch, "no_deps": no_deps,
            "variant": plan.get("variant")}


def show_variants(tool: str) -> list[dict]:
    proc = subprocess.run([NLPSETUP, "show", tool, "--json"], capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(proc.stdout)["variants"]


def donor_plan(tool, variant, plat, arch, py):
    """The variant's plan for the nearest host that accepts it.

    Tries the target itself first, then the variant's other platforms and
    architectures, with the target's Python when the variant allows it.
    """
    from packaging.specifiers import SpecifierSet
    spec = SpecifierSet(variant["python_specifier"] or "")
    pyv = py if spec.contains(FULL_VERSION.get(py, py + ".0")) else variant["python"]
    hosts = [(plat, arch)]
    for p in variant["platforms"]:
        for a in variant["arch"]:
            a = "aarch64" if (p == "linux" and a == "arm64") else a
            if (p, a) not in hosts:
                hosts.append((p, a))
    for p, a in hosts:
        rc, doc = run_plan(tool, p, a, pyv, variant["id"])
        if rc == 0:
            return plan_requirements(doc), f"{p} {a} {pyv}"
    return None, "no host accepts it"


# --- pip -----------------------------------------------------------------

_pip_lock = threading.Lock()


SDIST_WHEELS = "/tmp/pipcmp/sdist-wheels"  # pure-Python wheels built from sdists
CACHE_VERSION = "find-links-v2"


def run_pip(args, req: dict, plat, arch, py, cache: dict) -> dict:
    old = hashlib.sha256(json.dumps([req["reqs"], req["constraints"], req["pre"],
                                     plat, arch, py], sort_keys=True).encode()).hexdigest()
    key = old + ":" + CACHE_VERSION
    with _pip_lock:
        if key in cache:
            return cache[key]
        if cache.get(old, {}).get("outcome") == "ok":  # more wheels to choose from cannot undo a success
            return cache[old]
    built: list[str] = []
    compiled: set[str] = set()  # sdists in the way that need a compiler to build
    for _ in range(8):  # each round may uncover the next sdist-only dependency (for this target)
        result = _pip_once(args, req, plat, arch, py)
        if result["outcome"] != "fail":
            break
        blockers = ([(result["missing"], result.get("missing_spec", ""))] if result.get("missing") else []) + [
            (m.group(1), m.group(2).replace(" and ", ","))
            for m in (re.search(r"depends on ([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?(.*)", ln)
                      for ln in result.get("conflict", [])) if m]
        new = []
        for name, spec in dict.fromkeys(blockers):
            wheel = pure_wheel(name, spec.strip(), args.pip_python)
            if wheel == "":
                compiled.add(name.lower())
            elif wheel and wheel not in built:
                new.append(wheel)
        if not new:
            break
        built += new
    result["sdist_wheels"] = built
    result["sdist_compiled"] = sorted(compiled)
    with _pip_lock:
        cache[key] = result
    return result


def _pip_once(args, req: dict, plat, arch, py) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PIP_") and k not in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    os.makedirs(SDIST_WHEELS, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pipcmp-") as tmp:
        cfile = os.path.join(tmp, "constraints.txt")
        report_file = os.path.join(tmp, "report.json")
        with open(cfile, "w") as fh:
            fh.write("".join(c + "\n" for c in req["constraints"]))
        pip_args = ["install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
                    "--index-url", INDEX, "--find-links", SDIST_WHEELS, "--cache-dir", "/tmp/pipcmp/cache"]
        for tag in platform_tags(plat, arch):
            pip_args += ["--platform", tag]
        # The full version: "3.9" would mean 3.9.0, which Requires-Python like !=3.9.0 excludes.
        pip_args += ["--python-version", FULL_VERSION[py], "--implementation", "cp",
                     "--abi", "cp" + py.replace(".", ""), "-c", cfile]
        if req["pre"]:
            pip_args.append("--pre")
        if req["no_deps"]:
            pip_args.append("--no-deps")
        pip_args += req["reqs"] + ["--report", report_file]
        argv = [args.pip_python, os.path.abspath(__file__), "--pip-shim",
                json.dumps(marker_env(plat, arch, py)), "--"] + pip_args
        t0 = time.time()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                                  timeout=args.pip_timeout)
        except subprocess.TimeoutExpired:
            return {"outcome": "timeout", "seconds": args.pip_timeout}
        result = {"seconds": round(time.time() - t0, 1)}
        if proc.returncode == 0:
            with open(report_file) as fh:
                report = json.load(fh)
            result["outcome"] = "ok"
            result["installs"] = {i["metadata"]["name"]: i["metadata"]["version"]
                                  for i in report.get("install", [])}
            return result
    text = proc.stderr + "\n" + proc.stdout
    errors = [ln.strip() for ln in proc.stderr.splitlines()
              if ln.startswith("ERROR:") and "Ignored the following" not in ln]
    network = any(s in text for s in ("Max retries", "ConnectionError",
                                      "Read timed out", "NewConnectionError"))
    result["outcome"] = "error" if network and not errors else "fail"
    error = errors[0] if errors else text.strip()[-300:]
    if "The conflict is caused by:" in text:
        cause = text.split("The conflict is caused by:", 1)[1].strip().splitlines()
        cause = [ln.strip() for ln in cause if ln.strip()][:6]
        result["conflict"] = cause
        error += " | " + "; ".join(cause)
    result["error"] = error[:800]
    result["stderr_tail"] = proc.stderr.strip()[-800:]
    missing = re.search(r"satisfies the requirement ([A-Za-z0-9_.\-]+)(\[[^\]]*\])?([^ (]*)", text)
    if missing and "from versions:" in text:
        result["missing"] = missing.group(1)
        result["missing_spec"] = missing.group(3)
    return result


_build_lock = threading.Lock()
_built: dict[tuple[str, str], str | None] = {}  # (name, version) -> the pure wheel's file name, None: not pure


def pure_wheel(name: str, spec: str, pip_python: str) -> str | None:
    """Build the sdist of NAME's newest release that fits SPEC (pip found no wheel of it for the
    target) into a wheel, with no C
    compiler (CC=/bin/false); keep it in SDIST_WHEELS when that gives a pure-Python wheel (tag
    *-none-any). Returns its file name; "" when the sdist needs a compiler; None when no
    release with an sdist fits."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version
    try:
        fits = SpecifierSet(spec)
    except InvalidSpecifier:
        fits = SpecifierSet()
    releases = pypi_releases(name)
    versions = []
    for v, files in releases.items():
        try:
            parsed = Version(v)
        except InvalidVersion:
            continue
        if any(f["packagetype"] == "sdist" and not f.get("yanked") for f in files) and fits.contains(parsed):
            versions.append(parsed)
    if not versions:
        return None
    version = str(max(versions))
    with _build_lock:
        if (name, version) in _built:
            return _built[(name, version)]
        builder = pip_python  # pip 26 (old pips lack a build env with bdist_wheel)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env.update(PIP_CONFIG_FILE=os.devnull, CC="/bin/false", CXX="/bin/false")
        with tempfile.TemporaryDirectory(prefix="pipcmp-wheel-") as out:
            subprocess.run([builder, "-m", "pip", "wheel", "-q", "--no-deps", "--no-binary", ":all:",
                            "--index-url", INDEX, "-w", out, f"{name}=={version}"],
                           capture_output=True, text=True, env=env, timeout=600)
            wheels = [w for w in os.listdir(out) if w.endswith(".whl")]
            pure = [w for w in wheels if w.endswith("-none-any.whl")]
            for w in pure:
                os.replace(os.path.join(out, w), os.path.join(SDIST_WHEELS, w))
        _built[(name, version)] = pure[0] if pure else ""
        return _built[(name, version)]


_releases: dict[str, dict] = {}


def pypi_releases(name: str) -> dict:
    if name not in _releases:
        try:
            with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=60) as resp:
                _releases[name] = json.load(resp)["releases"]
        except Exception:
            _releases[name] = {}
    return _releases[name]


def pip_shim(env_json: str, pip_args: list[str]) -> int:
    """Run pip with marker evaluation done for the target, not this host."""
    from pip._vendor.packaging import markers
    target = json.loads(env_json)
    markers.default_environment = lambda: dict(target)
    from pip._internal.cli.main import main
    return main(pip_args)


# --- cells ---------------------------------------------------------------

def documented(messages: list[str]) -> bool:
    """A refusal reason is documented when it says why, e.g. '(... no wheels ...)'."""
    return bool(messages) and all("(" in m for m in messages)


def says_it_builds(plan: dict, pip: dict) -> bool:
    """pip stopped at sdists that need a compiler, and the plan names each of them
    in what it says it needs ("needs cc ...: ... crcmod ...")."""
    names = pip.get("sdist_compiled") or []
    needs = [w.lower() for w in plan.get("warnings", []) if w.startswith("needs ")]
    return bool(names) and all(any(n in w for w in needs) for n in names)


def measure_cell(args, tool, plat, arch, py, variants, pip_cache) -> dict:
    cell = {"tool": tool, "platform": plat, "arch": arch, "python": py}
    rc, plan = run_plan(tool, plat, arch, py)
    if rc == 0:
        req = plan_requirements(plan)
        cell.update(plan="yes", variant=req["variant"], reqs=req["reqs"],
                    constraints=req["constraints"], torch_from_pypi=req["torch_from_pypi"])
        pip = run_pip(args, req, plat, arch, py, pip_cache)
        cell["pip"] = pip
        cell["class"] = {"ok": "agree-yes", "fail": "false-yes",
                         "timeout": "pip-timeout"}.get(pip["outcome"], "pip-error")
        if cell["class"] == "false-yes" and says_it_builds(plan, pip):
            cell["class"] = "agree-builds"
        return cell
    if rc != 3:
        cell.update(plan="error", error=plan.get("error"), **{"class": "plan-error"})
        return cell
    rejected = {r["variant"]: [d["message"] for d in r.get("details", [])] or r["reasons"]
                for r in plan.get("rejected", [])}
    cell.update(plan="no", rejected=rejected)
    # Newest variant first, then the newest one whose Python range has this Python.
    from packaging.specifiers import SpecifierSet
    tries = [variants[0]]
    for v in variants:
        if SpecifierSet(v["python_specifier"] or "").contains(FULL_VERSION[py]):
            if v is not variants[0]:
                tries.append(v)
            break
    cell["tried"] = []
    for v in tries:
        req, donor = donor_plan(tool, v, plat, arch, py)
        if req is None:
            cell["tried"].append({"variant": v["id"], "donor": donor, "pip": None})
            continue
        pip = run_pip(args, req, plat, arch, py, pip_cache)
        cell["tried"].append({"variant": v["id"], "donor": donor, "reqs": req["reqs"],
                              "constraints": req["constraints"],
                              "torch_from_pypi": req["torch_from_pypi"], "pip": pip})
        if pip["outcome"] == "ok":
            why = rejected.get(v["id"], [])
            cell["class"] = "documented-refusal" if documented(why) else "false-refusal"
            cell["success_variant"] = v["id"]
            return cell
    outcomes = {t["pip"]["outcome"] for t in cell["tried"] if t["pip"]}
    if outcomes <= {"fail"} and outcomes:
        cell["class"] = "agree-no"
    elif "timeout" in outcomes:
        cell["class"] = "pip-timeout"
    elif not outcomes:
        cell["class"] = "refusal-untested"
    else:
        cell["class"] = "pip-error"
    return cell


def export(results: str, out: str) -> int:
    """pip's verdict per (cell, variant) it was asked about: "yes" (a binary install exists), or
    "no" with the packages it had no wheel for. tests/test_wheel_availability.py holds plans to it."""
    with open(results) as fh:
        cells = json.load(fh)["cells"]
    verdicts: dict[str, dict[str, dict]] = {}
    for key, cell in sorted(cells.items()):
        asked = [(cell.get("variant"), cell.get("pip"))] if cell.get("plan") == "yes" else [
            (t["variant"], t["pip"]) for t in cell.get("tried", [])]
        for variant, pip in asked:
            if not pip or pip.get("outcome") not in ("ok", "fail"):
                continue  # a timeout or a network error says nothing
            v = {"pip": "yes"} if pip["outcome"] == "ok" else {
                "pip": "no", "needs_build": pip.get("sdist_compiled", []), "error": pip.get("error", "")[:160]}
            verdicts.setdefault(key, {})[variant] = v
    with open(out, "w") as fh:
        json.dump({"about": "pip install --dry-run --only-binary=:all: --platform/--python-version for the "
                            "requirements and constraints of each plan (tools/pip_compare.py --export)",
                   "source": INDEX, "recorded": time.strftime("%Y-%m-%d"),
                   "cells": verdicts}, fh, indent=0, sort_keys=True)
        fh.write("\n")
    print(f"wrote {out}: {sum(map(len, verdicts.values()))} verdicts for {len(verdicts)} cells")
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--pip-shim":
        return pip_shim(sys.argv[2], sys.argv[4:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/pipcmp/results.json")
    ap.add_argument("--pip-python", default=sys.executable,
                    help="interpreter whose pip resolves (default: this one)")
    ap.add_argument("--pip-timeout", type=int, default=180)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--pythons", default=",".join(PYTHONS))
    ap.add_argument("--tools", default="", help="comma list (default: all recipes)")
    ap.add_argument("--windows-arm64", action="store_true")
    ap.add_argument("--export", metavar="JSON",
                    help="write pip's verdicts from --out for the tests (tests/data/pip_binary_check.json) and stop")
    args = ap.parse_args()
    if args.export:
        return export(args.out, args.export)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    state = {"cells": {}, "pip_cache": {}}
    if os.path.exists(args.out):
        with open(args.out) as fh:
            state = json.load(fh)
    tools = args.tools.split(",") if args.tools else [
        t["name"] for t in json.loads(subprocess.run(
            [NLPSETUP, "list", "--json"], capture_output=True, text=True, check=True).stdout)]
    variants = {t: show_variants(t) for t in tools}
    platforms = PLATFORMS + ([("windows", "arm64")] if args.windows_arm64 else [])
    cells = [(t, p, a, py) for py in args.pythons.split(",") for t in tools
             for p, a in platforms]
    todo = [c for c in cells if "|".join(c) not in state["cells"]]
    print(f"{len(cells)} cells, {len(todo)} to measure", flush=True)

    save_lock = threading.Lock()
    t_start = time.time()

    def work(c):
        t0 = time.time()
        try:
            cell = measure_cell(args, *c, variants[c[0]], state["pip_cache"])
        except Exception as exc:  # keep going; record the failure
            cell = dict(zip(("tool", "platform", "arch", "python"), c, strict=True),
                        **{"class": "script-error", "error": repr(exc)[:300]})
        cell["seconds"] = round(time.time() - t0, 1)
        with save_lock, _pip_lock:  # _pip_lock: pip_cache is part of state
            state["cells"]["|".join(c)] = cell
            tmp = args.out + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(state, fh, indent=1)
            os.replace(tmp, args.out)
            print(f"[{time.time() - t_start:6.0f}s] {' '.join(c):40} {cell['class']}",
                  flush=True)

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(work, todo))
    counts: dict[str, int] = {}
    for cell in state["cells"].values():
        counts[cell["class"]] = counts.get(cell["class"], 0) + 1
    print(json.dumps(counts, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
