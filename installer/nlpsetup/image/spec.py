"""OCI images of an env, the pure part: the base a Python gets (data/bases.toml), the build
context's Containerfile, the image's labels, the checks baked into the image and the Kubernetes
Job that runs them on a cluster's own nodes (the checks' runner itself is `runner.py`, a program
read as text). `engines` runs a container engine over these; `build` joins the two with the bundle.

The env lives at PREFIX/NAME in the image with its manifest and lock, on PATH. It is made in a
build stage from the bundle's wheels alone (`pip install --no-index --require-hashes`), and only
the env is copied into the final stage, so the wheels do not weigh on the image.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import tomllib

from nlpsetup import __version__
from nlpsetup.base.errors import EXIT_REFUSED, NlpsetupError
from nlpsetup.recipes.model import Smoke

PREFIX = "/opt/nlpsetup/envs"
CONTEXT_BUNDLE = "bundle"  # the bundle's folder inside the build context
CHECKS = "nlpsetup-checks"  # the checks' folder inside the build context and the env
_BASES = Path(__file__).parents[1] / "data" / "bases.toml"
_RUNNER = Path(__file__).with_name("runner.py")  # a program for the image, read as text
_LABEL = "io.nlpsetup."


@dataclass(frozen=True)
class Base:
    python: str  # X.Y
    image: str
    glibc: str
    interpreter: str  # the command that starts that Python in the image
    source: str = "--base"


@functools.cache
def load_bases(path: Path | None = None) -> tuple[Base, ...]:
    with open(path or _BASES, "rb") as f:
        return tuple(Base(**row) for row in tomllib.load(f)["base"])


def choose_base(python: str | None, base: str | None, bases: tuple[Base, ...] | None = None) -> Base:
    """The base for a Python minor: the table's row, or `--base IMAGE`, which must say its Python
    (`--python X.Y`) unless it is a table's image. glibc of an unknown base is taken as the
    table's for that Python; the smoke checks in the image prove the wheels load."""
    bases = bases or load_bases()
    minors = ", ".join(b.python for b in bases)
    if base:
        known = next((b for b in bases if b.image == base), None)
        if known and (python is None or python == known.python):
            return known
        if python is None:
            raise NlpsetupError(f"--base {base}: nlpsetup cannot tell which Python it has",
                                hint="say it: --python X.Y (the image must have pythonX.Y on PATH)")
        row = next((b for b in bases if b.python == python), None)
        return Base(python, base, row.glibc if row else "2.28", f"python{python}")
    row = next((b for b in bases if b.python == python), None)
    if row is None:
        raise NlpsetupError(f"no default base image for Python {python}: the table has {minors}",
                            hint=f"pass --base IMAGE --python {python} with an image that has python{python}, "
                                 f"or pick a Python the table has", exit_code=EXIT_REFUSED)
    return row


def check_arch(requested: str | None, host_arch: str) -> None:
    """Images are built for this machine's architecture only: one for another could not run its
    smoke checks here, and an unproven image is never tagged."""
    if requested and requested != host_arch:
        raise NlpsetupError(f"cannot build an {requested} image on this {host_arch} machine: its smoke checks "
                            f"cannot run here, and nlpsetup tags only an image whose checks passed",
                            hint=f"run the same command on an {requested} machine (or a CI runner of that "
                                 "architecture)", exit_code=EXIT_REFUSED)


@dataclass(frozen=True)
class Spec:
    """Everything the image says about itself, from the bundle's lock and the chosen base."""

    env: str
    base: Base
    tools: tuple[dict, ...]  # the lock's tools: name, request, variant, recipe_digest, smoke
    python: str  # X.Y
    torch: str  # the torch build (cpu, cu126), or "none" where the env has no torch
    lock_digest: str
    min_driver: str | None = None  # for a CUDA build: the oldest NVIDIA driver that runs it
    summary: str = ""
    homepage: str = ""

    @property
    def prefix(self) -> str:
        return f"{PREFIX}/{self.env}"

    @property
    def tool(self) -> dict:
        return self.tools[0] if self.tools else {"name": self.env, "variant": "lock"}


def lock_digest(lock_text: str) -> str:
    return "sha256:" + hashlib.sha256(lock_text.encode("utf-8")).hexdigest()


def labels(spec: Spec, created: str) -> dict[str, str]:
    """OCI labels (org.opencontainers.image.*, the pre-defined annotation keys) and nlpsetup's own."""
    t = spec.tool
    name, digest = spec.base.image.partition("@")[::2]
    out = {
        "org.opencontainers.image.title": spec.env,
        "org.opencontainers.image.description": spec.summary or f"{t['name']} {t.get('variant', '')} env, verified",
        "org.opencontainers.image.version": str(t.get("variant", "")),
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.base.name": name,
        **({"org.opencontainers.image.base.digest": digest} if digest else {}),
        **({"org.opencontainers.image.url": spec.homepage} if spec.homepage else {}),
        _LABEL + "tool": ",".join(x["name"] for x in spec.tools) or spec.env,
        _LABEL + "variant": str(t.get("variant", "")),
        _LABEL + "python": spec.python,
        _LABEL + "torch": spec.torch,
        _LABEL + "recipe-digest": str(t.get("recipe_digest") or ""),
        _LABEL + "lock-digest": spec.lock_digest,
        _LABEL + "env": spec.prefix,
        _LABEL + "nlpsetup-version": __version__,
    }
    if spec.min_driver:
        out[_LABEL + "cuda-min-driver"] = spec.min_driver
    return out


def _quoted(value: str) -> str:
    """A double-quoted Containerfile word: backslash and quote escaped as in JSON, and `$`, which
    LABEL would expand as a build variable."""
    return json.dumps(value, ensure_ascii=False).replace("$", "\\$")


def containerfile(spec: Spec, created: str) -> str:
    """A multi-stage Containerfile over the build context: `docker build`, `podman build` and
    `buildah bud` build it as is, without an index."""
    p, ctx = spec.prefix, f"/tmp/{CONTEXT_BUNDLE}"
    label_lines = " \\\n      ".join(f"{k}={_quoted(v)}" for k, v in labels(spec, created).items())
    return f"""\
# {spec.env}: made by nlpsetup {__version__}. Build: docker build -t NAME:TAG .
# The env is made from {CONTEXT_BUNDLE}/ alone (hashed wheels for this image's platform, no index).
FROM {spec.base.image} AS build
COPY {CONTEXT_BUNDLE}/ {ctx}/
COPY {CHECKS}/ {p}/{CHECKS}/
RUN {spec.base.interpreter} -m venv {p} \\
 && {p}/bin/python -m pip install --no-cache-dir --disable-pip-version-check --no-index --no-deps \\
      --require-hashes --find-links {ctx}/wheels -r {ctx}/requirements.txt \\
 && cp {ctx}/nlpsetup.lock.json {ctx}/nlpsetup.json {p}/

FROM {spec.base.image}
COPY --from=build {p} {p}
ENV PATH="{p}/bin:$PATH" VIRTUAL_ENV="{p}"
LABEL {label_lines}
CMD ["{p}/bin/python"]
"""


def manifest(spec: Spec, lock: dict, created: str) -> dict:
    """The env's manifest (ENV/nlpsetup.json) as it stands in the image."""
    return {"schema_version": 1, "nlpsetup_version": __version__, "env": {"name": spec.env, "path": spec.prefix},
            "tools": list(spec.tools),
            "interpreter": {"version": spec.python, "implementation": "CPython", "path": None,
                            "source": f"image base {spec.base.image}", "env_python": f"{spec.prefix}/bin/python"},
            "backend": "pip", "compute": lock.get("compute") or {"backend": None, "reason": None, "index": None},
            "constraints": [], "install_env": lock.get("install_env") or {}, "host": {"image": spec.base.image},
            "steps": [], "distributions": lock.get("distributions") or {}, "smoke": [], "size_bytes": None,
            "log": None, "created": created, "python_platform": None}


# --- the checks, baked into the image ----------------------------------------------------------

def checks(spec: Spec) -> dict:
    """checks.json for the runner: every tool's smoke checks with paths as they are in the image."""
    from nlpsetup.execution import smoke

    names: list[str] = []
    ordered: list[dict] = []
    env: dict[str, str] = {}
    limit = 0
    for t in spec.tools:
        s = smoke_of(t.get("smoke") or {})
        inner = smoke.in_process_checks(s)
        commands = smoke.command_checks(s, f"{spec.prefix}/bin/python", Path(spec.prefix))
        # As smoke.run_all orders them: the commands start once the imports are done.
        for name, check in (inner[:1] + commands + inner[1:] if s.imports else commands + inner):
            names.append(name)
            ordered.append(check)
        env.update(dict(s.env))
        limit += s.timeout * (len(inner) + len(commands))
    return {"names": names, "checks": [[i, c] for i, c in enumerate(ordered)], "env": env, "limit": limit + 30}


def smoke_of(d: dict) -> Smoke:
    return Smoke(imports=tuple(d.get("imports", ())), code=d.get("code") or "",
                 commands=tuple(tuple(c) for c in d.get("commands", ())), timeout=int(d.get("timeout", 300)),
                 env=tuple((d.get("env") or {}).items()))


def check_files(spec: Spec) -> dict[str, str]:
    """The files of the checks' folder (ENV/nlpsetup-checks/ in the image)."""
    from nlpsetup.execution import smoke

    return {"run.py": _RUNNER.read_text(encoding="utf-8"), "harness.py": smoke.harness_text(),
            "checks.json": json.dumps(checks(spec), indent=1)}


def check_argv(spec: Spec) -> list[str]:
    """The command that proves the image: the same for the engine and for the Job."""
    return [f"{spec.prefix}/bin/python", "-I", f"{spec.prefix}/{CHECKS}/run.py"]


# --- the cluster side ---------------------------------------------------------------------------


def job_manifest(spec: Spec, image_ref: str, created: str) -> dict:
    """A Kubernetes batch/v1 Job that runs the image's checks on a node of the cluster, once,
    with requests and limits, and an nvidia.com/gpu limit for a CUDA build."""
    name = "nlpsetup-check-" + "".join(c if c.isalnum() else "-" for c in spec.env.lower()).strip("-")[:40]
    limits = {"cpu": "2", "memory": "4Gi"}
    if spec.torch.startswith("cu"):
        limits["nvidia.com/gpu"] = "1"
    annotations = labels(spec, created)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "nlpsetup"},
                     "annotations": annotations},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": checks(spec)["limit"] + 600,  # the checks, plus pulling the image
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}, "annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "check",
                        "image": image_ref,
                        "command": check_argv(spec),
                        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": limits},
                    }],
                },
            },
        },
    }
