"""Install backends: pip (always there) and uv (faster, optional). One plan, two runners.

Plans are written as pip commands; the uv runner translates each into the same install with
`uv pip install --python ENV`, with the same packages, pins, constraints and indexes, and creates
the env with `uv venv` plus a pip seed. `runnable` is the one place that turns a plan's step into
the commands a backend runs: `execute` runs them and `plan`/`install --dry-run` show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from packaging.version import Version

from nlpsetup.base.errors import EXIT_REFUSED, NlpsetupError
from nlpsetup.facts.host import IndexSettings
from nlpsetup.facts.uv import find_uv  # noqa: F401 (backends.find_uv: where the uv backend comes from)
from nlpsetup.recipes.model import TORCH_FAMILY
from nlpsetup.resolve.cutoff import FAR, PIP_FLAG, UV_FLAG, build_floor
from nlpsetup.resolve.model import PIP_INSTALL, Plan, Step, split_installer

UV_MIN_PYTHON = Version("3.8")  # uv installs into Python 3.8 and newer
# uv settings that mean the user chose uv's index themselves: then pip's is not handed over.
_UV_INDEX_VARS = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS")


def uv_version(uv: str | None) -> str | None:
    """uv's version ("uv 0.13.9 (x86_64-unknown-linux-gnu)" -> "0.13.9"), or None."""
    from nlpsetup.base import proc

    if not uv:
        return None
    words = proc.capture([uv, "--version"], env=proc.child_env(), timeout=10)[1].split()
    return words[1] if len(words) > 1 and words[0] == "uv" else None


def tool_versions() -> dict[str, str | None]:
    """The installer tools nlpsetup itself runs with (doctor reports them)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in ("pip", "virtualenv"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["uv"] = uv_version(find_uv())
    return out


def choose(requested: str, python_version: str, uv_path: str | None) -> tuple[str, str]:
    """(backend, why) for `--backend auto|pip|uv`."""
    old = Version(python_version) < UV_MIN_PYTHON
    if requested == "pip":
        return "pip", "--backend pip"
    if requested == "uv":
        if uv_path is None:
            raise NlpsetupError("--backend uv: no uv executable found",
                                hint="install it with: pip install 'nlpsetup[uv]' (or put uv on PATH)")
        if old:
            raise NlpsetupError(f"--backend uv: uv cannot install into Python {python_version} (it needs 3.8+)",
                                hint="use --backend pip for this env", exit_code=EXIT_REFUSED)
        return "uv", "--backend uv"
    if uv_path is None:
        return "pip", "uv not found"
    if old:
        return "pip", f"uv does not install into Python {python_version}"
    return "uv", "uv found"


def translate(argv: tuple[str, ...], backend: str, uv_path: str | None, env_python: str) -> list[str]:
    """A plan's `ENV/bin/python -m pip install ARGS` as the backend runs it."""
    head, args = split_installer(argv)
    if backend != "uv" or head[1:] != PIP_INSTALL:
        return list(argv)
    args = [a for a in args if a != "--prefer-binary"]  # uv always prefers wheels it can use
    # uv's --index-url is deprecated and loses to a UV_DEFAULT_INDEX handed over from pip's
    # configuration; --default-index wins over it, as pip's --index-url wins over pip.conf.
    args = ["--default-index" if a == "--index-url" else a for a in args]
    # pip's --uploaded-prior-to T is uv's --exclude-newer T: both exclude files uploaded at or after T.
    if PIP_FLAG in args:  # the PyTorch family comes from an index without upload times: never cut
        args = [UV_FLAG if a == PIP_FLAG else a for a in args]
        args += [a for n in TORCH_FAMILY for a in ("--exclude-newer-package", f"{n}={FAR}")]
        args += build_floor(args[args.index(UV_FLAG) + 1])
    return [uv_path, "pip", "install", "--python", env_python, *args]


def uv_index_env(index: IndexSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """Hand pip's configured index to uv, so that switching backends never switches where
    packages come from. Passed as variables, not arguments, so that tokens stay out of argv."""
    if any(environ.get(v) for v in _UV_INDEX_VARS):
        return {}
    out = {}
    if index.index_url:
        out["UV_DEFAULT_INDEX"] = index.index_url
    if index.extra_index_urls:
        out["UV_INDEX"] = " ".join(index.extra_index_urls)
        # pip merges all indexes and takes the best match; uv's default stops at the first index.
        out["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    if index.find_links:
        out["UV_FIND_LINKS"] = ",".join(index.find_links)
    return out


# Index options and the variables that say the same thing, per backend: a URL that carries a
# credential moves from the command line (world-readable in `ps` and /proc/PID/cmdline) to the
# child's environment (readable by its owner only), as pip's and uv's docs advise. The variable
# means what the option meant: both replace the configured index, neither merges with it.
_INDEX_OPTION_VARS = {
    "pip": {"--index-url": "PIP_INDEX_URL", "-i": "PIP_INDEX_URL", "--extra-index-url": "PIP_EXTRA_INDEX_URL",
            "--find-links": "PIP_FIND_LINKS", "-f": "PIP_FIND_LINKS"},
    "uv": {"--default-index": "UV_DEFAULT_INDEX", "--index-url": "UV_DEFAULT_INDEX", "-i": "UV_DEFAULT_INDEX",
           "--index": "UV_INDEX", "--extra-index-url": "UV_INDEX", "--find-links": "UV_FIND_LINKS",
           "-f": "UV_FIND_LINKS"},
}
_LIST_SEP = {"PIP_EXTRA_INDEX_URL": " ", "PIP_FIND_LINKS": " ", "UV_INDEX": " ", "UV_FIND_LINKS": ","}


def credentials_to_env(argv: list[str], backend: str) -> tuple[list[str], dict[str, str]]:
    """(argv without any credentialed index URL, the variables that carry those URLs instead).
    An option moves with all of its values, so that a variable never competes with the same
    option left on the command line (which would win)."""
    from nlpsetup.base.redact import mask_text

    options = _INDEX_OPTION_VARS["uv" if backend == "uv" else "pip"]
    parsed: list[tuple[str | None, list[str]]] = []  # (variable, the arguments it came from)
    i = 0
    while i < len(argv):
        name, eq, _ = argv[i].partition("=") if argv[i].startswith("--") else (argv[i], "", "")
        if name in options and (eq or i + 1 < len(argv)):
            parsed.append((options[name], argv[i:i + (1 if eq else 2)]))
            i += 1 if eq else 2
        else:
            parsed.append((None, [argv[i]]))
            i += 1
    values = {var: [a[-1].partition("=")[2] if len(a) == 1 else a[-1] for v, a in parsed if v == var]
              for var, _ in parsed if var}
    secret = {var for var, urls in values.items() if any(mask_text(u) != u for u in urls)}
    out = [a for var, args in parsed if var not in secret for a in args]
    return out, {var: _LIST_SEP.get(var, " ").join(values[var]) for var in secret}


def check_no_pip(backend: str) -> None:
    """`--no-pip` leaves pip out of the env; only uv can install into such an env."""
    if backend != "uv":
        raise NlpsetupError("--no-pip needs the uv backend: the pip backend installs with the env's own pip",
                            hint="pass --backend uv (pip install 'nlpsetup[uv]'), or drop --no-pip")


def seed_wheel(python_version: str) -> str | None:
    """The pip wheel virtualenv bundles for this Python, so that seeding an env needs no index
    (what a virtualenv-made env gets); None where virtualenv bundles none (3.8 and older)."""
    try:
        from virtualenv.seed.wheels.embed import get_embed_wheel

        wheel = get_embed_wheel("pip", ".".join(python_version.split(".")[:2]))
    except (ImportError, AttributeError, ValueError):
        return None
    return str(wheel.path) if wheel is not None else None


def runnable(step: Step, backend: str, uv_path: str | None, env_python: str, python_version: str, *,
             interpreter: str | None = None, pip: bool = True) -> list[Step]:
    """A plan's step as `backend` runs it (one or two steps). The uv runner creates with `uv venv`
    (a tenth of virtualenv's time) and then seeds pip, so that `python -m pip` and an activated
    `pip` target the env as in any virtualenv; `pip=False` (--no-pip) leaves it out."""
    if step.name == "create" and step.method == "virtualenv" and backend == "uv":
        from nlpsetup.envs.env import Env

        env = Env.at(Path(env_python).parent.parent)
        uv = uv_path or "uv"
        target = interpreter or step.interpreter
        create = replace(step, argv=tuple(env.create_argv("uv", target, uv=uv)), method="uv",
                         description=step.description.replace("with virtualenv", "with uv venv"))
        if not pip:
            return [create]
        if wheel := seed_wheel(python_version):
            seed = (uv, "pip", "install", "--quiet", "--offline", "--python", env_python, wheel)
            return [create, Step("seed", seed, "seed pip (virtualenv's bundled wheel)",
                                 timeout=step.timeout)]
        # No bundled wheel for this Python: uv's own seeding, which takes pip from the index.
        return [replace(create, argv=(*create.argv[:2], "--seed", *create.argv[2:]),
                        description=create.description + ", with pip from the index")]
    if step.name == "create":
        return [step]
    if step.name == "resolve":  # `uv pip compile` whatever the backend: the uv found here
        return [replace(step, argv=(uv_path or "uv", *step.argv[1:]))]
    argv = translate(step.argv, backend, uv_path or "uv", env_python)
    return [step if list(step.argv) == argv else replace(step, argv=tuple(argv))]


def for_backend(plan: Plan, backend: str, uv_path: str | None, *, pip: bool = True) -> Plan:
    """The plan with the steps `backend` will really run, and the backend named (plan, --dry-run)."""
    steps = [r for s in plan.steps
             for r in runnable(s, backend, uv_path, plan.env_python, plan.python.version, pip=pip)]
    return replace(plan, steps=tuple(steps), backend=backend)
