"""CI matrices from the recipes: every (tool, python, platform) cell the recipes allow, each with
the variant it resolves to and the hosted runner that can run it, and the refused cells with their
reasons. Pure: cells are resolved against simulated hosts, so this runs anywhere and needs no
interpreter of the listed versions. Which runner offers which Python and architecture is data
(data/runners.toml); sets larger than a CI system's matrix limit are split into jobs."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from nlpsetup.base.errors import NlpsetupError
from nlpsetup.facts.gpu import Gpu, GpuFacts
from nlpsetup.facts.host import OSES, Host, assumption, normalize_arch, simulated_host
from nlpsetup.facts.pythons import PythonInstall, PythonRequest
from nlpsetup.recipes.model import Recipe
from nlpsetup.resolve import cpython
from nlpsetup.resolve import model as resolve
from nlpsetup.resolve import resolve as resolver

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

_TABLE_PATH = Path(__file__).parents[1] / "data" / "runners.toml"
# Jobs one matrix may expand to: GitHub's documented limit, and GitLab's for `parallel: matrix`.
MAX_JOBS = {"github": 256, "gitlab": 200}
# A CUDA cell is resolved against a current data-centre GPU and driver.
CUDA_GPU = GpuFacts(driver="580.65.06", gpus=(Gpu("NVIDIA simulated sm_90", "9.0", 81559),), source="simulated")
# GitHub's ceiling for one job; a cell's own limit comes from its variant's size (see timeout_minutes).
MAX_MINUTES = 360


@dataclass(frozen=True)
class Runner:
    label: str  # runs-on label (GitHub) or runner tag (GitLab)
    platform: str
    arch: str
    pythons: tuple[str, ...]  # empty: any (a runner the user named, not one in the table)


@dataclass(frozen=True)
class Matrix:
    include: tuple[dict, ...]
    excluded: tuple[dict, ...]
    hosts: tuple[str, ...] = ()  # what each platform's simulated host assumes (plan --platform says the same)

    def to_dict(self) -> dict:
        return {"schema_version": 1, "hosts": list(self.hosts), "include": list(self.include),
                "excluded": list(self.excluded)}


@cache
def table() -> dict:
    with open(_TABLE_PATH, "rb") as f:
        return tomllib.load(f)


def runners(provider: str) -> list[Runner]:
    return [Runner(r["label"], r["platform"], r["arch"], tuple(r["pythons"])) for r in table()[provider]]


def refused_platform(provider: str, platform: str) -> str | None:
    """Why `provider` gets no cells for `platform` (no hosted runner nlpsetup can use), or None."""
    if provider == "gitlab":
        return table()["gitlab_refused"].get(platform)
    return None


def supported_pythons(recipe: Recipe) -> list[str]:
    return [m for m in cpython.KNOWN_MINORS if any(cpython.python_fits(v.python, m) for v in recipe.variants)]


def timeout_minutes(recipe: Recipe, variant_id: str) -> int:
    """A job's time limit: ten minutes plus one per 100 MB the variant installs, and room for three
    steps that each use their whole recipe time limit."""
    v = next(x for x in recipe.variants if x.id == variant_id)
    minutes = 10 + math.ceil((v.size_mb or 500) / 100)
    if v.step_timeout:
        minutes = max(minutes, math.ceil(3 * v.step_timeout / 60))
    return min(minutes, MAX_MINUTES)


def parse_options(python: str | None, platform: str | None, runner: tuple[str, ...] = ()
                  ) -> tuple[list[str] | None, list[str], dict[str, str]]:
    """(pythons or None for every supported one, platforms, platform -> runner label) from the options."""
    platforms = _split(platform) or ["linux"]
    for p in platforms:
        if p not in OSES:
            raise NlpsetupError(f"--platform {p!r} is not one of {', '.join(OSES)}", hint="for example: --platform linux,macos")
    pythons = None if python in (None, "supported") else _split(python)
    for v in pythons or []:
        if not all(part.isdigit() for part in v.split(".")) or len(v.split(".")) != 2:
            raise NlpsetupError(f"--python {v!r} is not a Python version such as 3.12", hint="for example: --python 3.10,3.11,3.12")
    labels = {}
    for item in runner:
        key, sep, label = item.partition("=")
        if not sep or key not in OSES or not label:
            raise NlpsetupError(f"--runner {item!r} is not PLATFORM=LABEL", hint="for example: --runner linux=ubuntu-22.04")
        labels[key] = label
    return pythons, platforms, labels


def _split(value: str | None) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()] if value else []


def _candidates(provider: str, platform: str, named: dict[str, str]) -> list[Runner]:
    known = runners(provider)
    if platform in named:  # the user's choice; the table's facts when it is a known image
        label = named[platform]
        return [r for r in known if r.label == label] or [
            Runner(label, platform, next((r.arch for r in known if r.platform == platform), "x86_64"), ())]
    return [r for r in known if r.platform == platform]


def build(recipes: list[Recipe], pythons: list[str] | None, platforms: list[str], *, compute: str = "cpu",
          runners: dict[str, str] | None = None, provider: str = "github", arch: str | None = None,
          glibc: str | None = None) -> Matrix:
    """Cells resolved against simulated hosts (host.simulated_host, the machine `plan --platform`
    assumes), on the runners that can give their Python; `arch` / `glibc` change the machine."""
    arch = normalize_arch(arch) if arch else None
    for platform in platforms:
        if why := refused_platform(provider, platform):
            raise NlpsetupError(f"{provider} has no hosted runner nlpsetup can use for {platform}: {why}",
                                hint="use --platform linux, or --provider github")
    include, excluded = [], []
    for recipe in recipes:
        for py in pythons or supported_pythons(recipe):
            for platform in platforms:
                candidates = [r for r in _candidates(provider, platform, runners or {}) if arch in (None, r.arch)]
                cell, reasons = _place(recipe, py, platform, candidates, compute, provider, glibc)
                if cell:
                    include.append(cell)
                else:
                    excluded.append({"tool": recipe.name, "python": py, "platform": platform, "reasons": reasons})
    hosts = tuple(assumption(simulated_host(p, arch=arch, glibc=glibc)) for p in platforms)
    return Matrix(tuple(include), tuple(excluded), hosts)


def _place(recipe: Recipe, py: str, platform: str, candidates: list[Runner], compute: str, provider: str,
           glibc: str | None = None) -> tuple[dict | None, list[str]]:
    """The cell on the first runner whose architecture the recipe allows and which offers `py`, or the
    reasons no runner fits."""
    reasons: list[str] = []
    for arch in dict.fromkeys(r.arch for r in candidates):
        result = resolver.resolve(recipe, _host(platform, arch, py, compute, glibc), resolve.Request(
            tool=resolve.ToolRequest(recipe.name), python=PythonRequest(raw=py, version=py),
            compute="auto" if compute == "cpu" else compute), envs_root=Path("envs"))
        if isinstance(result, resolve.Refusal):
            reasons += [f"{rej.variant}: {_cell_reason(r)}" for rej in result.rejected for r in rej.reasons]
            continue
        if _wants_gpu(compute) and (result.compute is None or result.compute.backend == "cpu"):
            return None, ["no CUDA build: " + (result.compute.reason if result.compute
                                               else "the tool has no GPU-specific packages")]
        fits = [r for r in candidates if r.arch == arch and (not r.pythons or py in r.pythons)]
        if not fits:
            offered = "; ".join(f"{r.label}: {_span(r.pythons)}" for r in candidates if r.arch == arch)
            reasons.append(f"no {provider} hosted runner for {platform} {arch} offers Python {py} ({offered})")
            continue
        return {"tool": recipe.name, "python": py, "os": fits[0].label, "platform": platform, "arch": arch,
                "variant": result.variant.id, "compute": result.compute.backend if result.compute else "cpu",
                "recipe_digest": recipe.digest[:12], "timeout_minutes": timeout_minutes(recipe, result.variant.id)
                }, []
    return None, list(dict.fromkeys(reasons))


def _cell_reason(r: resolve.Reason) -> str:
    # A cell's Python is one of the matrix's coordinates, not a request: resolve's "; you asked for
    # Python 3.6" would answer a question nobody asked.
    return r.message.split("; you asked for ", 1)[0] if r.code == "python" else r.message


def _wants_gpu(compute: str) -> bool:
    return compute not in ("auto", "cpu")  # cuda, or one build (cu126)


def _host(platform: str, arch: str, py: str, compute: str, glibc: str | None = None) -> Host:
    gpu = CUDA_GPU if _wants_gpu(compute) and platform != "macos" else GpuFacts(driver=None, source="simulated")
    return simulated_host(platform, arch=arch, glibc=glibc, gpu=gpu,
                          pythons=(PythonInstall(py, path=None, source="simulated"),))


def _span(pythons: tuple[str, ...]) -> str:
    return f"{pythons[0]}-{pythons[-1]}" if len(pythons) > 1 else (pythons[0] if pythons else "any")


def jobs(m: Matrix, provider: str) -> list[tuple[str, list[dict]]]:
    """(job id, cells): one job while the cells fit one matrix, else one job per tool, and a tool
    with more cells than the limit in numbered chunks."""
    limit = MAX_JOBS[provider]
    if len(m.include) <= limit:
        return [("install", list(m.include))]
    by_tool: dict[str, list[dict]] = {}
    for c in m.include:
        by_tool.setdefault(c["tool"], []).append(c)
    out = []
    for tool, cells in by_tool.items():
        name = "install-" + re.sub(r"[^A-Za-z0-9_-]", "-", tool)
        chunks = [cells[i:i + limit] for i in range(0, len(cells), limit)]
        out += [(name if len(chunks) == 1 else f"{name}-{n}", chunk) for n, chunk in enumerate(chunks, 1)]
    return out


def github(m: Matrix) -> str:
    return json.dumps({"include": list(m.include)}, separators=(",", ":"))


def gitlab(m: Matrix, indent: str = "") -> str:
    """A `parallel: matrix:` block (YAML), one entry per cell."""
    return gitlab_block(list(m.include), indent)


def gitlab_block(cells: list[dict], indent: str = "") -> str:
    lines = ["parallel:", "  matrix:"]
    for c in cells:
        lines.append(f"    - TOOL: {json.dumps(c['tool'])}")
        for key in ("python", "platform", "arch", "variant", "compute", "recipe_digest"):
            lines.append(f"      {key.upper()}: {json.dumps(c[key])}")
        lines.append(f"      RUNNER: {json.dumps(c['os'])}")
    if not cells:
        lines[-1] = "  matrix: []"
    return "".join(f"{indent}{line}\n" for line in lines)
