"""CI matrices from the recipes: every (tool, python, platform) cell the recipes allow, each with
the variant it resolves to, and the refused cells with their reasons. Pure: cells are resolved
against simulated hosts, so this runs anywhere and needs no interpreter of the listed versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nlpsetup import resolve
from nlpsetup.gpu import Gpu, GpuFacts
from nlpsetup.host import Host
from nlpsetup.pythons import PythonInstall, PythonRequest
from nlpsetup.recipes import Recipe

RUNNERS = {"linux": "ubuntu-latest", "macos": "macos-latest", "windows": "windows-latest"}
# The architecture of each platform's default hosted runner (macos-latest is Apple Silicon).
ARCH = {"linux": "x86_64", "macos": "arm64", "windows": "x86_64"}
# A CUDA cell is resolved against a current data-centre GPU and driver.
CUDA_GPU = GpuFacts(driver="580.65.06", gpus=(Gpu("NVIDIA simulated sm_90", "9.0", 81559),), source="simulated")


@dataclass(frozen=True)
class Matrix:
    include: tuple[dict, ...]
    excluded: tuple[dict, ...]

    def to_dict(self) -> dict:
        return {"schema_version": 1, "include": list(self.include), "excluded": list(self.excluded)}


def supported_pythons(recipe: Recipe) -> list[str]:
    return [m for m in resolve.KNOWN_MINORS if any(resolve.python_fits(v.python, m) for v in recipe.variants)]


def build(recipes: list[Recipe], pythons: list[str] | None, platforms: list[str], *, compute: str = "cpu",
          runners: dict[str, str] | None = None) -> Matrix:
    runners = {**RUNNERS, **(runners or {})}
    include, excluded = [], []
    for recipe in recipes:
        for py in pythons or supported_pythons(recipe):
            for platform in platforms:
                gpu = CUDA_GPU if compute == "cuda" and platform != "macos" else GpuFacts(driver=None, source="simulated")
                host = Host(os=platform, arch=ARCH[platform], libc="glibc" if platform == "linux" else None,
                            libc_version="2.39" if platform == "linux" else None,
                            pythons=(PythonInstall(py, path=None, source="simulated"),), gpu=gpu, simulated=True)
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
    return Matrix(tuple(include), tuple(excluded))


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


def parse_options(python: str | None, platform: str | None, runner=()) -> tuple[list[str] | None, list[str], dict]:
    """`--python 3.10,3.11|supported`, `--platform linux,macos`, `--runner linux=ubuntu-22.04`, checked."""
    from nlpsetup.errors import NlpsetupError
    from nlpsetup.host import OSES

    def split(value):
        return [x.strip() for x in value.split(",") if x.strip()] if value else []

    platforms = split(platform) or ["linux"]
    for p in platforms:
        if p not in OSES:
            raise NlpsetupError(f"--platform {p!r} is not one of {', '.join(OSES)}", hint="for example: --platform linux,macos")
    pythons = None if python in (None, "supported") else split(python)
    for v in pythons or []:
        if len(v.split(".")) != 2 or not all(part.isdigit() for part in v.split(".")):
            raise NlpsetupError(f"--python {v!r} is not a Python version such as 3.12", hint="for example: --python 3.10,3.11,3.12")
    runners = {}
    for item in runner:
        key, sep, label = item.partition("=")
        if not sep or key not in OSES or not label:
            raise NlpsetupError(f"--runner {item!r} is not PLATFORM=LABEL", hint="for example: --runner linux=ubuntu-22.04")
        runners[key] = label
    return pythons, platforms, runners
