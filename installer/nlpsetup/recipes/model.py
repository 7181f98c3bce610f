"""Recipe values: a tool's Recipe, its Variants (what one install of it takes), their Smoke checks
and Pins, the PyTorch family, and how a Python range reads to people.

A recipe file is checked and turned into these values by `recipes.schema` and loaded by
`recipes.load`; everything past loading reads only these frozen values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from nlpsetup.base.platforms import ARCHES
from nlpsetup.base.platforms import OSES as PLATFORMS

# Framework packages installed from PyTorch's own index (CPU or CUDA build), in this order.
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")


@dataclass(frozen=True)
class Pin:
    req: str
    why: str = ""
    url: str = ""

    @property
    def name(self) -> str:
        return canonicalize_name(Requirement(self.req).name)


@dataclass(frozen=True)
class Smoke:
    imports: tuple[str, ...] = ()
    code: str = ""
    commands: tuple[tuple[str, ...], ...] = ()
    timeout: int = 300
    env: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict:
        return {
            "imports": list(self.imports),
            "code": self.code,
            "commands": [list(c) for c in self.commands],
            "timeout": self.timeout,
            "env": dict(self.env),
        }


@dataclass(frozen=True)
class Variant:
    id: str
    python: SpecifierSet
    packages: tuple[str, ...]
    platforms: tuple[str, ...] = PLATFORMS
    arch: tuple[str, ...] = ARCHES
    # "os-arch" pairs that have wheels, where not every pair does; "windows-arm64 python>=3.11" where
    # a pair's wheels start (or stop) at other Pythons than the variant's range
    targets: tuple[str, ...] = ()
    targets_reason: str = ""
    python_reason: str = ""
    pins: tuple[Pin, ...] = ()
    pre: tuple[str, ...] = ()
    framework: tuple[tuple[str, str], ...] = ()  # (package, specifier)
    companions: tuple[tuple[str, str], ...] = ()  # (package, framework it follows)
    cuda_packages: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # package -> ((cuXYZ, req), ...)
    only_binary: tuple[str, ...] = ()
    prefer_binary: bool = True
    glibc: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    tools: tuple[tuple[str, str], ...] = ()  # external tool -> what needs it (warnings)
    conda: dict | None = None
    extras: tuple[str, ...] = ()
    main: str = ""  # the distribution a version specifier (`autonlp==0.3.7`) is about
    aliases: tuple[str, ...] = ()  # recipe aliases that mean this variant (`azure-cli` -> the CLI)
    step_timeout: int | None = None
    size_mb: int | None = None
    notes: str = ""
    smoke: Smoke = field(default_factory=Smoke)
    # Dependencies as of this day (YYYY-MM-DD, UTC): files uploaded after it are not considered
    # (cutoff.py); the packages in as_of_exempt may be newer.
    as_of: str | None = None
    as_of_exempt: tuple[str, ...] = ()

    def target_python(self, os_name: str, arch: str) -> SpecifierSet | None:
        """The Pythons this variant has wheels for on os-arch (empty: all of its range), None for none."""
        if not self.targets:
            return SpecifierSet()
        for target in self.targets:
            pair, _, pythons = target.partition(" python")
            if pair == f"{os_name}-{arch}":
                return SpecifierSet(pythons.strip())
        return None

    @property
    def main_requirement(self) -> Requirement:
        for raw in self.packages:
            req = Requirement(raw)
            if canonicalize_name(req.name) == canonicalize_name(self.main):
                return req
        return Requirement(self.packages[0])


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    homepage: str
    status: str
    variants: tuple[Variant, ...]
    aliases: tuple[str, ...] = ()
    notes: str = ""
    history: str = ""
    path: str = ""
    digest: str = ""

    def variant(self, variant_id: str) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)


_OP_ORDER = {">=": 0, ">": 1, "==": 2, "===": 2, "~=": 3, "!=": 4, "<=": 5, "<": 6}


def fmt_spec(spec: SpecifierSet) -> str:
    """A specifier as people read it: '3.8' for '>=3.8,<3.9', else lower bound first ('>=3.6,<3.9')."""
    clauses = sorted(spec, key=lambda s: (_OP_ORDER.get(s.operator, 9), s.version))
    if len(clauses) == 2 and clauses[0].operator == ">=" and clauses[1].operator == "<":
        lo, hi = Version(clauses[0].version).release, Version(clauses[1].version).release
        if len(lo) <= 2 and len(hi) == 2 and lo[0] == hi[0] and (lo + (0,))[1] + 1 == hi[1]:
            return f"{lo[0]}.{(lo + (0,))[1]}"
    if len(clauses) == 1 and clauses[0].operator == "==" and clauses[0].version.endswith(".*"):
        return clauses[0].version[:-2]
    return ",".join(str(c) for c in clauses) or "any"
