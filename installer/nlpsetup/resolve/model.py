"""The values of resolution: what is asked (Request, ToolRequest) and what comes back (a Plan of Steps,
or a Refusal whose Rejected variants keep their Reasons). Plain frozen values with their JSON form;
the algorithm that makes them is ``nlpsetup.resolve.resolve``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from nlpsetup.base.errors import EXIT_REFUSED, NlpsetupError
from nlpsetup.base.redact import mask_argv, mask_env, mask_text
from nlpsetup.facts.pythons import PythonInstall, PythonRequest
from nlpsetup.recipes.model import Variant
from nlpsetup.resolve import cutoff
from nlpsetup.resolve.compute import ComputeChoice

SCHEMA_VERSION = 1


# --- the request ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolRequest:
    name: str
    extras: tuple[str, ...] = ()
    specifier: str = ""

    def __str__(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"


@dataclass(frozen=True)
class Request:
    tool: ToolRequest
    variant: str | None = None
    python: PythonRequest | None = None
    python_install: PythonInstall | None = None  # probed at the edge for --python PATH
    compute: str = "auto"
    via: str = "pip"
    env_name: str | None = None
    fetch_python: bool = False
    torch_mirror: str | None = None
    today: dt.date = field(default_factory=dt.date.today)
    as_of: str | None = None  # --as-of DATE or latest; None: the recipe's own (cutoff.choose)


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    code: str  # platform | arch | glibc | python | interpreter | version | extra | compute | conda
    message: str
    fix: str = ""

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class Rejected:
    variant: str
    reasons: tuple[Reason, ...]

    def to_dict(self) -> dict:
        return {"variant": self.variant, "reasons": [r.message for r in self.reasons],
                "details": [r.to_dict() for r in self.reasons]}


# A plan's pip steps run `ENV/bin/python -m pip install ARGS`; uv's own are `uv pip install|compile ARGS`.
PIP_INSTALL = ("-m", "pip", "install")
UV_PIP = ("install", "compile")


def split_installer(argv: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the head of a command that runs an installer, what the installer is given): `PY -m pip
    install` or `uv pip install|compile`, then the rest. A command that runs no installer (create,
    `uv python install`) has an empty head: all of it is arguments."""
    argv = tuple(argv)
    if argv[1:4] == PIP_INSTALL:
        return argv[:4], argv[4:]
    if argv[1:2] == ("pip",) and argv[2:3] and argv[2] in UV_PIP:
        return argv[:3], argv[3:]
    return (), argv


@dataclass(frozen=True)
class Step:
    name: str  # fetch-python | create | pre | framework | install
    argv: tuple[str, ...]
    description: str
    env: tuple[tuple[str, str], ...] = ()
    timeout: int | None = None
    method: str | None = None  # for create: virtualenv | venv | uv | conda (env.CREATE_METHODS)

    @property
    def installer(self) -> tuple[str, ...]:
        """The head of argv that runs pip or uv (`ENV/bin/python -m pip install`, `uv pip compile`);
        empty for a step that runs no installer."""
        return split_installer(self.argv)[0]

    @property
    def args(self) -> tuple[str, ...]:
        """The rest of argv after `installer`: the installer's options, packages and files."""
        return split_installer(self.argv)[1]

    @property
    def interpreter(self) -> str | None:
        """The Python the step is for: the one a create step makes the env from (its `--python`, or
        the venv's own), the env's own for a pip or uv pip step; None where argv names none (conda)."""
        if self.method == "venv" or self.installer[1:] == PIP_INSTALL:
            return self.argv[0]
        if "--python" in self.argv[:-1]:
            return self.argv[self.argv.index("--python") + 1]
        return None

    def to_dict(self) -> dict:
        out = {"name": self.name, "argv": mask_argv(list(self.argv)), "description": self.description,
               "env": mask_env(dict(self.env)), "timeout": self.timeout}
        if self.method:
            out["method"] = self.method
        return out


@dataclass(frozen=True)
class Plan:
    tool: str
    request: str
    recipe_digest: str
    variant: Variant
    python: PythonInstall
    env_name: str
    env_path: str
    env_python: str
    steps: tuple[Step, ...]
    constraints: tuple[str, ...]
    compute: ComputeChoice | None
    torch_index: str | None
    warnings: tuple[str, ...]
    skipped: tuple[Rejected, ...]
    simulated: bool
    host: str
    backend: str = "pip"  # whose commands `steps` are: backends.for_backend rewrites them for uv
    as_of: cutoff.Cutoff | None = None  # dependencies as of this date; None: whatever the index holds
    requirements: tuple[str, ...] = ()  # what a `resolve` step resolves (execute writes them to a file)

    def to_dict(self) -> dict:
        v = self.variant
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": self.tool,
            "backend": self.backend,
            "request": self.request,
            "recipe_digest": self.recipe_digest,
            "variant": v.id,
            "python": {
                "version": self.python.version,
                "implementation": self.python.implementation,
                "path": self.python.path,
                "source": self.python.source,
                "simulated": self.python.path is None,
            },
            "env": {"name": self.env_name, "path": self.env_path, "python": self.env_python},
            "host": self.host,
            "simulated_host": self.simulated,
            "compute": None if self.compute is None else {
                "backend": self.compute.backend, "reason": self.compute.reason,
                "index_url": mask_text(self.torch_index) if self.torch_index else None,
            },
            "steps": [s.to_dict() for s in self.steps],
            "pins": [{"req": p.req, "why": p.why, "url": p.url} for p in v.pins],
            "constraints": list(self.constraints),
            "install_env": dict(v.env),
            "smoke": v.smoke.to_dict(),
            "warnings": list(self.warnings),
            "skipped_variants": [r.to_dict() for r in self.skipped],
            "notes": v.notes,
            "as_of": self.as_of.to_dict() if self.as_of else None,
        }


@dataclass(frozen=True)
class Refusal:
    tool: str
    request: str
    headline: str
    rejected: tuple[Rejected, ...]
    suggestions: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": self.tool,
            "request": self.request,
            "refused": True,
            "message": self.headline,
            "rejected": [r.to_dict() for r in self.rejected],
            "suggestions": list(self.suggestions),
        }

    def one_line(self) -> str:
        first = self.rejected[0].reasons[0].message if self.rejected and self.rejected[0].reasons else ""
        return f"{self.headline} {first}".strip()


class Refused(NlpsetupError):
    """The host cannot have what was asked: carries the Refusal, rendered by the command line."""

    exit_code = EXIT_REFUSED

    def __init__(self, refusal: Refusal, note: str = ""):
        super().__init__(refusal.headline, hint=refusal.suggestions[0] if refusal.suggestions else None)
        self.refusal = refusal
        self.note = note  # a line said before the refusal (why several tools cannot share one env)
