"""CI matrices from the recipes: every (tool, python, platform) cell the recipes allow, each with
the variant it resolves to, and the refused cells with their reasons. Pure: cells are resolved
against simulated hosts, so this runs anywhere and needs no interpreter of the listed versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nlpsetup import resolve
from nlpsetup.gpu import Gpu, GpuFacts
from nlpsetup.host import assumption, simulated_host
from nlpsetup.pythons import PythonInstall, PythonRequest
from nlpsetup.recipes import Recipe

RUNNERS = {"linux": "ubuntu-latest", "macos": "macos-latest", "windows": "windows-latest"}
# A CUDA cell is resolved against a current data-centre GPU and driver.
CUDA_GPU = GpuFacts(driver="580.65.06", gpus=(Gpu("NVIDIA simulated sm_90", "9.0", 81559),), source="simulated")


@dataclass(frozen=True)
class Matrix:
    include: tuple[dict, ...]
    excluded: tuple[dict, ...]
    hosts: tuple[str, ...] = ()  # what each platform's simulated host assumes

    def to_dict(self) -> dict:
        return {"schema_version": 1, "hosts": list(self.hosts), "include": list(self.include),
                "excluded": list(self.excluded)}


def supported_pythons(recipe: Recipe) -> list[str]:
    return [m for m in resolve.KNOWN_MINORS if any(resolve.python_fits(v.python, m) for v in recipe.variants)]


def build(recipes: list[Recipe], pythons: list[str] | None, platforms: list[str], *, compute: str = "cpu",
          runners: dict[str, str] | None = None, arch: str | None = None, glibc: str | None = None) -> Matrix:
    """Cells resolved against each platform's simulated host (host.simulated_host: the default CI
    runner's machine, the same one `plan --platform` assumes), changed by `arch` / `glibc`."""
    runners = {**RUNNERS, **(runners or {})}
    include, excluded = [], []
    for recipe in recipes:
        for py in pythons or supported_pythons(recipe):
            for platform in platforms:
                gpu = CUDA_GPU if compute == "cuda" and platform != "macos" else GpuFacts(driver=None, source="simulated")
                host = simulated_host(platform, arch=arch, glibc=glibc, gpu=gpu,
                                      pythons=(PythonInstall(py, path=None, source="simulated"),))
                req = resolve.Request(tool=resolve.ToolRequest(recipe.name),
                                      python=PythonRequest(raw=py, version=py))
                result = resolve.resolve(recipe, host, req, envs_root=Path("envs"))
                if isinstance(result, resolve.Refusal):
                    excluded.append({"tool": recipe.name, "python": py, "platform": platform,
                                     "reasons": [f"{rej.variant}: {r.message}" for rej in result.rejected
                                                 for r in rej.reasons]})
                    continue
                if compute == "cuda" and (result.compute is None or result.compute.backend == "cpu"):
                    excluded.append({"tool": recipe.name, "python": py, "platform": platform,
                                     "reasons": ["no CUDA build: " + (result.compute.reason if result.compute
                                                                      else "the tool has no GPU-specific packages")]})
                    continue
                include.append({"tool": recipe.name, "python": py, "os": runners[platform], "platform": platform,
                                "variant": result.variant.id,
                                "compute": result.compute.backend if result.compute else "cpu",
                                "recipe_digest": recipe.digest[:12]})
    hosts = tuple(assumption(simulated_host(p, arch=arch, glibc=glibc)) for p in platforms)
    return Matrix(tuple(include), tuple(excluded), hosts)


def github(m: Matrix) -> str:
    return json.dumps({"include": list(m.include)}, separators=(",", ":"))


def gitlab(m: Matrix) -> str:
    """A `parallel: matrix:` block (YAML), one entry per cell."""
    lines = ["parallel:", "  matrix:"]
    for c in m.include:
        lines.append(f"    - TOOL: {json.dumps(c['tool'])}")
        for key in ("python", "platform", "variant", "compute", "recipe_digest"):
            lines.append(f"      {key.upper()}: {json.dumps(c[key])}")
    if not m.include:
        lines[-1] = "  matrix: []"
    return "\n".join(lines) + "\n"
