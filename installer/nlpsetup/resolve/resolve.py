"""Resolution: (recipe, host, request) -> Plan | Refusal. A pure function: no I/O.

Variants are tried newest first. Each is checked against the host (platform, arch, glibc,
the interpreters present, the GPU) and the request (version specifier, extras, --python,
--compute, --via); the first that fits becomes the plan, and every rejection keeps its
reasons and what would make it fit, so that a refusal can say exactly why and what to do.
The values it takes and returns are in ``nlpsetup.resolve.model``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from nlpsetup.base.errors import NlpsetupError
from nlpsetup.envs.env import Env
from nlpsetup.envs.names import check_env_name
from nlpsetup.facts.host import Host, assumption
from nlpsetup.facts.pythons import PythonInstall
from nlpsetup.recipes import specsets
from nlpsetup.recipes.model import TORCH_FAMILY, Recipe, Variant, fmt_spec
from nlpsetup.resolve import cutoff
from nlpsetup.resolve.compute import (
    ComputeChoice,
    choose_backend,
    torch_builds,
    torch_index_url,
    torch_size_mb,
)
from nlpsetup.resolve.cpython import (
    MIN_PYTHON,
    PIP_CAP,
    PYTHON_EOL,
    VIRTUALENV_MIN,
    can_host_env,
    in_range,
    known_minors,
    python_fits,
    version_of,
)
from nlpsetup.resolve.model import Plan, Reason, Refusal, Rejected, Request, Step, ToolRequest


def parse_tool(text: str) -> ToolRequest:
    """`adaptnlp`, `adaptnlp[dev]`, `autonlp==0.3.7` -> ToolRequest; anything else is a usage error."""
    if not text or text.lstrip().startswith("-"):
        raise NlpsetupError(f"{text!r} is not a tool name", hint="see the tools with: nlpsetup list")
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise NlpsetupError(
            f"{text!r} is not a tool specifier: {str(exc).splitlines()[0]}",
            hint="write TOOL, TOOL[extra] or TOOL==VERSION, e.g. autonlp==0.3.7",
        ) from None
    if any(not spec.version.strip() for spec in req.specifier):
        raise NlpsetupError(f"{text!r} is not a tool specifier: a version is missing after the operator",
                            hint="write TOOL, TOOL[extra] or TOOL==VERSION, e.g. autonlp==0.3.7")
    if req.url or req.marker:
        raise NlpsetupError(f"{text!r}: URLs and markers are not allowed in a tool specifier",
                            hint="write TOOL, TOOL[extra] or TOOL==VERSION")
    return ToolRequest(name=req.name, extras=tuple(sorted(req.extras)), specifier=str(req.specifier))


def resolve(recipe: Recipe, host: Host, request: Request, *, envs_root: Path) -> Plan | Refusal:
    variants = recipe.variants
    if request.variant is not None:
        chosen = recipe.variant(request.variant)
        if chosen is None:
            ids = ", ".join(v.id for v in recipe.variants)
            raise NlpsetupError(f"{recipe.name} has no variant {request.variant!r} (variants: {ids})",
                                hint=f"see them with: nlpsetup show {recipe.name}")
        variants = (chosen,)
    else:
        variants = considered(recipe, request)
    rejected: list[Rejected] = []
    for variant in variants:
        reasons, python, compute = _check_variant(recipe, variant, host, request)
        if reasons:
            rejected.append(Rejected(variant.id, tuple(reasons)))
            continue
        return _plan(recipe, variant, host, request, python, compute, tuple(rejected), envs_root)
    return _refusal(recipe, host, request, tuple(rejected))


def considered(recipe: Recipe, request: Request) -> tuple[Variant, ...]:
    """The variants a request without --variant chooses among: a recipe alias that variants claim
    (`azure-cli`) means those, any other name every variant."""
    named = canonicalize_name(request.tool.name)
    claimed = tuple(v for v in recipe.variants if named in {canonicalize_name(a) for a in v.aliases})
    return claimed or recipe.variants


def _check_variant(recipe: Recipe, v: Variant, host: Host, req: Request):
    reasons: list[Reason] = []
    if host.os not in v.platforms:
        reasons.append(Reason("platform", f"supports {', '.join(v.platforms)} only, not {host.os}",
                              _platform_fix(recipe, v, host)))
    if host.arch not in v.arch:
        reasons.append(Reason("arch", f"supports {', '.join(v.arch)} only, not {host.arch}",
                              "use a machine (or container) of a supported architecture"))
    target_python = v.target_python(host.os, host.arch)
    if target_python is None and host.os in v.platforms and host.arch in v.arch:
        why = f" ({v.targets_reason})" if v.targets_reason else ""
        reasons.append(Reason("platform", f"is offered for {', '.join(v.targets)} only, not {host.os}-{host.arch}{why}",
                              _platform_fix(recipe, v, host)))
    elif target_python:  # this target's wheels cover fewer Pythons than the variant's range
        v = replace(v, python=v.python & target_python,
                    python_reason=f"on {host.os}-{host.arch}: {v.targets_reason or 'its wheels there'}")
    if v.glibc and host.os == "linux":
        if host.libc != "glibc":
            reasons.append(Reason("glibc", f"needs glibc >= {v.glibc}; this host has {host.libc or 'no glibc'}",
                                  "use a glibc-based distribution (Debian, Ubuntu, Fedora)"))
        elif host.libc_version and version_of(host.libc_version) < version_of(v.glibc):
            reasons.append(Reason("glibc", f"needs glibc >= {v.glibc} (its compiled parts use newer symbols "
                                  f"than its wheel tag says); this host has glibc {host.libc_version}",
                                  f"use a host with glibc >= {v.glibc} (Ubuntu 24.04+, Debian 13+)"))
    if req.tool.specifier and not specsets.overlap(v.main_requirement.specifier, SpecifierSet(req.tool.specifier)):
        have = fmt_spec(v.main_requirement.specifier) if str(v.main_requirement.specifier) else "any version"
        reasons.append(Reason("version", f"installs {v.main} {have}, not {v.main}{req.tool.specifier}",
                              f"see the versions each variant covers: nlpsetup show {recipe.name}"))
    if v.extras:
        unknown = [e for e in req.tool.extras if e not in v.extras]
        if unknown:
            reasons.append(Reason("extra", f"has no extra {', '.join(unknown)} (extras: {', '.join(v.extras)})", ""))
    if req.via == "conda":
        if not v.conda:
            reasons.append(Reason("conda", "has no conda packages (it installs with pip only)",
                                  f"drop --via conda: nlpsetup plan {recipe.name}"))
        elif not host.simulated and not any(host.tool(t) for t in ("conda", "mamba", "micromamba")):
            reasons.append(Reason("conda", "--via conda needs conda, mamba or micromamba on PATH",
                                  "install micromamba or Miniforge, or drop --via conda"))
    python, py_reasons = _choose_python(recipe, v, host, req)
    reasons.extend(py_reasons)
    compute = None
    if python is not None:
        compute, c_reason = _choose_compute(v, host, req, python)
        if c_reason:
            reasons.append(c_reason)
    return reasons, python, compute


def _platform_fix(recipe: Recipe, v: Variant, host: Host) -> str:
    if host.os == "windows" and "linux" in v.platforms:
        return "use WSL2 (Linux on Windows) or a Linux machine"
    return f"use a {' or '.join(v.platforms)} machine"


def _choose_python(recipe: Recipe, v: Variant, host: Host, req: Request):
    """The interpreter for a variant: the newest present that fits, unless one was asked for."""
    why = f" ({v.python_reason})" if v.python_reason else ""
    spec = v.python
    shown = fmt_spec(spec)
    if req.python_install is not None:  # --python PATH, probed at the edge
        p = req.python_install
        if not in_range(spec, p.version):
            return None, [Reason("python", f"needs Python {shown}{why}; {p.path} is Python {p.version}",
                                 _python_fix(recipe, v, host))]
        return p, _too_old(p.version)
    wanted = [m for m in known_minors(spec, req.python.version if req.python else None)
              if req.python is None or req.python.admits(m)]
    exact = req.python is not None and req.python.version is not None and "." in req.python.version
    if req.python and not req.python.path and not (python_fits(spec, req.python.version) if exact else wanted):
        return None, [Reason("python", f"needs Python {shown}{why}; you asked for Python {req.python.shown}",
                             _python_fix(recipe, v, host))]
    if req.via == "conda" and wanted:  # conda brings its own Python: no interpreter needed here
        return PythonInstall(version=wanted[-1], path=None, source="conda"), []
    present = [p for p in host.pythons if p.implementation == "CPython" and in_range(spec, p.version)
               and (req.python is None or req.python.matches(p))]
    usable = [p for p in present if version_of(p.version) >= MIN_PYTHON]
    if usable:
        return usable[0], []
    if present:  # only Pythons too old for any env (2.7)
        return None, _too_old(present[0].version)
    if host.simulated and not host.pythons and wanted:
        return PythonInstall(version=wanted[-1], path=None, source="simulated"), []
    if req.fetch_python and wanted and host.tool("uv"):
        return PythonInstall(version=wanted[-1], path=None, source="uv-fetch"), []
    found = ", ".join(p.version for p in host.pythons) or "none"
    asked = f"Python {req.python.shown}" if req.python and not req.python.path else f"Python {shown}"
    return None, [Reason("interpreter", f"needs Python {shown}{why}; no {asked} interpreter on this host "
                         f"(found: {found})", _install_python_fix(recipe, wanted, host))]


def _too_old(version: str) -> list[Reason]:
    if can_host_env(version):
        return []
    return [Reason("python", f"Python {version} cannot host an env: it has no venv module and today's "
                   "virtualenv cannot target it", "use Python 3.6 or newer")]


def _python_fix(recipe: Recipe, v: Variant, host: Host) -> str:
    fits = [p for p in host.pythons if in_range(v.python, p.version) and version_of(p.version) >= MIN_PYTHON]
    if fits:
        p = fits[0]
        return (f"this machine has Python {p.version} ({p.source}): "
                f"nlpsetup install {recipe.name} --python {p.minor}")
    return _install_python_fix(recipe, known_minors(v.python, None), host)


def _install_python_fix(recipe: Recipe, wanted: list[str], host: Host) -> str:
    if not wanted:
        return "no released CPython fits this variant"
    m = wanted[-1]
    how = f"pyenv install {m}  or  uv python install {m}  or your OS packages (e.g. apt-get install python{m})"
    if host.tool("uv"):
        how += f"  (or let nlpsetup do it: nlpsetup install {recipe.name} --python {m} --fetch-python)"
    return f"install Python {m}: {how}"


def compute_request(text: str) -> str:
    """`--compute` as plan, install and matrix read it: auto, cpu, cuda (the newest CUDA build the
    host can run) or one CUDA build (cu126)."""
    value = text.strip().lower()
    if value in ("auto", "cpu", "cuda") or (value.startswith("cu") and value[2:].isdigit()):
        return value
    raise NlpsetupError(f"--compute {text!r} is not auto, cpu, cuda or a CUDA build such as cu126",
                        hint="for example: --compute cpu")


def _has_gpu_build(v: Variant) -> bool:
    return "torch" in dict(v.framework) or bool(v.cuda_packages)


def _choose_compute(v: Variant, host: Host, req: Request, python: PythonInstall):
    """Which build (cpu or cuXYZ) of the variant's GPU-dependent packages this host gets. A variant
    with none gets no choice: a GPU request does not apply to it (a warning says so), it is no refusal."""
    torch_spec = dict(v.framework).get("torch")
    candidates: list[str] = []
    if not _has_gpu_build(v):
        return None, None
    if torch_spec is not None:
        candidates = torch_builds(torch_spec, python.version)
    else:
        tags = {tag for _, swaps in v.cuda_packages for tag, _ in swaps}
        candidates = sorted(tags, key=_cuda_key, reverse=True)
    if req.compute == "cuda":  # the newest build this host can run, never a silent CPU one
        choice = choose_backend(candidates, host.gpu, host.os, "auto")
        if choice.backend == "cpu":
            return None, Reason("compute", f"no CUDA build this host can run: {choice.reason}",
                                "use --compute auto for the CPU build, or --compute cuXYZ to build for another machine")
        return choice, None
    if req.compute not in ("auto", "cpu") and req.compute not in candidates:
        offered = ", ".join(candidates) or "CPU only"
        return None, Reason("compute", f"offers no {req.compute} build for Python {python.version} "
                            f"(builds: {offered})", "use --compute auto or one of the builds listed")
    return choose_backend(candidates, host.gpu, host.os, req.compute), None


def _plan(recipe, v: Variant, host: Host, req: Request, python: PythonInstall,
          compute: ComputeChoice | None, skipped, envs_root: Path) -> Plan:
    env_name = check_env_name(req.env_name or recipe.name)
    env = Env(envs_root / env_name, host.os)
    env_path, env_py = env.path, str(env.python)
    target = python.path or f"python{python.minor}"
    constraints_file = str(env.constraints_path)
    timeout = v.step_timeout
    install_env = tuple(v.env)
    steps: list[Step] = []
    if python.source == "uv-fetch":
        steps.append(Step("fetch-python", ("uv", "python", "install", python.minor),
                          f"install CPython {python.minor} with uv", timeout=timeout))
    if req.via == "conda":
        return _conda_plan(recipe, v, host, req, python, skipped, env_name, env, env_py)
    if version_of(python.version) >= VIRTUALENV_MIN:
        steps.append(Step("create", tuple(env.create_argv("virtualenv", target)),
                          f"create the env with virtualenv (Python {python.version})", timeout=timeout,
                          method="virtualenv"))
    else:
        steps.append(Step("create", tuple(env.create_argv("venv", target)),
                          f"create the env with Python {python.version}'s own venv "
                          "(today's virtualenv cannot create it)", timeout=timeout, method="venv"))
    pip = (env_py, "-m", "pip", "install")
    binary = ("--prefer-binary",) if v.prefer_binary else ()
    if v.only_binary:
        binary += (f"--only-binary={','.join(v.only_binary)}",)
    pre = list(v.pre)
    if cap := PIP_CAP.get(python.minor):
        pre = [f"pip=={cap}", *[p for p in pre if canonicalize_name(Requirement(p).name) != "pip"]]
    if pre:
        steps.append(Step("pre", (*pip, "--upgrade", *binary, *pre), "upgrade the installer tools first",
                          env=install_env, timeout=timeout))
    framework = dict(v.framework)
    torch_reqs = [f"{name}{framework[name]}" for name in TORCH_FAMILY if name in framework]
    torch_index = None
    as_of = cutoff.choose(v.as_of, req.as_of, v.as_of_exempt, req.today)
    # Under a cutoff the PyTorch family comes alone (its index has no upload times: it is not cut), and
    # the cutoff step resolves its dependencies: else typing-extensions or numpy of today would stay.
    alone = ("--no-deps",) if as_of else ()
    if torch_reqs and compute is not None:
        torch_index = torch_index_url(compute.backend, req.torch_mirror)
        steps.append(Step("framework", (*pip, *binary, *alone, *torch_reqs, "--index-url", torch_index),
                          f"install the {compute.backend} build of {', '.join(n for n in TORCH_FAMILY if n in framework)}"
                          f" from PyTorch's index", env=install_env, timeout=timeout))
    packages = _packages(v, req, compute)
    others = [f"{name}{spec}" for name, spec in v.framework if name not in TORCH_FAMILY]
    listed = {canonicalize_name(Requirement(p).name) for p in v.packages}
    companions = [f"{pkg}{companion_specifier(framework[follows])}" for pkg, follows in v.companions
                  if canonicalize_name(pkg) not in listed]
    constraints = tuple(p.req for p in v.pins) + tuple(torch_reqs)
    wanted = (*packages, *others, *companions, *(torch_reqs if alone and torch_index else ()))
    constrained = ("-c", constraints_file) if constraints else ()
    description = f"install {recipe.name} ({v.id})" + (" with its pins as constraints" if v.pins else "")
    if as_of is None:
        steps.append(Step("install", (*pip, *binary, *wanted, *constrained), description, env=install_env,
                          timeout=timeout))
    elif cutoff.pip_supports(_pip_after(pre, python.minor)):
        steps += _cutoff_steps(as_of, pip, binary, wanted, constrained, description, install_env, timeout)
    else:
        steps += _pinned_steps(as_of, env, pip, constrained, python, pre, install_env, timeout)
    return Plan(
        tool=recipe.name, request=str(req.tool), recipe_digest=recipe.digest, variant=v, python=python,
        env_name=env_name, env_path=str(env_path), env_python=env_py, steps=tuple(steps),
        constraints=constraints, compute=compute, torch_index=torch_index,
        warnings=tuple(_warnings(recipe, v, host, req, python, compute)), skipped=skipped,
        simulated=host.simulated or python.path is None, host=host.describe(), as_of=as_of,
        requirements=wanted if any(s.name == "resolve" for s in steps) else (),
    )


# pip's version in a fresh env: virtualenv seeds its bundled pip (26 or newer on 3.9+); older
# Pythons are held at PIP_CAP by the `pre` step, as is any recipe that pins pip there.
def _pip_after(pre: list[str], minor: str) -> str:
    for raw in pre:
        r = Requirement(raw)
        if canonicalize_name(r.name) == "pip":
            exact = [s.version for s in r.specifier if s.operator == "=="]
            return exact[0] if exact else "0"  # a range may end below 26: resolve outside the env
    return PIP_CAP.get(minor, "26.0")


def _cutoff_steps(as_of, pip, binary, wanted, constrained, description, install_env, timeout) -> list[Step]:
    """The env's own pip (26+) applies the cutoff (uv: --exclude-newer, see backends.translate);
    exempt packages go in first without it, so that the cutoff step keeps them and resolves their
    dependencies as of the date."""
    steps = []
    if as_of.exempt:
        exempt = [w for w in wanted if canonicalize_name(Requirement(w).name) in as_of.exempt]
        exempt += [n for n in as_of.exempt if n not in {canonicalize_name(Requirement(w).name) for w in exempt}]
        steps.append(Step("exempt", (*pip, "--no-deps", *binary, *exempt, *constrained),
                          f"install {', '.join(as_of.exempt)} without the cutoff (as_of_exempt)",
                          env=install_env, timeout=timeout))
    steps.append(Step("install", (*pip, *binary, cutoff.PIP_FLAG, as_of.instant, *wanted, *constrained),
                      f"{description}, {as_of.describe()}", env=install_env, timeout=timeout))
    return steps


def _pinned_steps(as_of, env: Env, pip, constrained, python, pre, install_env, timeout) -> list[Step]:
    """Where the env's pip cannot apply a cutoff (pip 26 needs Python 3.9+), uv resolves for the
    env's interpreter as of the date, and the env's pip installs exactly that list, nothing more.
    The PyTorch family (its own index, its own pins) and the exempt packages are not cut."""
    far = cutoff.FAR
    lifted = [a for n in (*TORCH_FAMILY, *as_of.exempt) for a in ("--exclude-newer-package", f"{n}={far}")]
    lifted += cutoff.build_floor(as_of.instant)  # a legacy sdist's build tools
    pinned = str(env.path / cutoff.PINNED)
    resolve_step = Step("resolve", ("uv", "pip", "compile", "--quiet", "--no-header", "--no-annotate",
                                    "--python", str(env.python),
                                    cutoff.UV_FLAG, as_of.instant, *lifted,
                                    *[a for n in TORCH_FAMILY for a in ("--no-emit-package", n)],
                                    *constrained, "-o", pinned, str(env.path / "nlpsetup-requirements.in")),
                        f"resolve as of {as_of.date} with uv for Python {python.version} (its pip "
                        f"{_pip_after(pre, python.minor)} has no --uploaded-prior-to)", env=install_env,
                        timeout=timeout)
    # An sdist in that list is built by the env's pip (or uv) in an isolated build env whose
    # setuptools/wheel would come from today's index (pip < 26 cannot cut them): resolve those as
    # of the date too and hand them over as build constraints (PIP_CONSTRAINT reaches pip's build
    # env; UV_BUILD_CONSTRAINT is uv's), written as upper bounds so they never clash with the list.
    build_out = str(env.path / cutoff.BUILD_CONSTRAINTS)
    build_step = Step("resolve", ("uv", "pip", "compile", "--quiet", "--no-header", "--no-annotate",
                                  "--python", str(env.python), cutoff.UV_FLAG, as_of.instant, *lifted,
                                  *constrained, "-o", build_out, str(env.path / cutoff.BUILD_IN)),
                      f"resolve the build tools ({', '.join(cutoff.BUILD_TOOLS)}) as of {as_of.date} for sdists "
                      "built at install", env=install_env, timeout=timeout)
    build_env = (*install_env, ("PIP_CONSTRAINT", build_out), ("UV_BUILD_CONSTRAINT", build_out))
    install = Step("install", (*pip, "--no-deps", "-r", pinned),
                   f"install exactly the versions uv resolved as of {as_of.date} ({as_of.source})", env=build_env, timeout=timeout)
    return [resolve_step, build_step, install]


def _conda_plan(recipe, v, host, req, python, skipped, env_name, env, env_py) -> Plan:
    conda = next((t for t in ("micromamba", "mamba", "conda") if host.tool(t)), "conda")
    channels = [a for c in v.conda.get("channels", ()) for a in ("-c", c)]
    argv = env.create_argv("conda", f"python={python.minor}", conda=conda,
                           conda_args=(*channels, f"python={python.minor}", *v.conda["packages"]))
    step = Step("create", tuple(argv), f"create the env with {conda} ({', '.join(v.conda['packages'])})",
                timeout=v.step_timeout, method="conda")
    env_path = env.path
    return Plan(
        tool=recipe.name, request=str(req.tool), recipe_digest=recipe.digest, variant=v,
        python=PythonInstall(version=python.minor, path=None, source="conda"),
        env_name=env_name, env_path=str(env_path), env_python=env_py, steps=(step,), constraints=(),
        compute=None, torch_index=None, warnings=tuple(_warnings(recipe, v, host, req, python, None)),
        skipped=skipped, simulated=host.simulated, host=host.describe(),
    )


def _packages(v: Variant, req: Request, compute: ComputeChoice | None) -> list[str]:
    """The variant's packages, with the request's extras and specifier on the main one and the
    CUDA build of a swappable package (mxnet -> mxnet-cu112) where the GPU gets one."""
    swaps = {canonicalize_name(name): dict(tags) for name, tags in v.cuda_packages}
    framework = dict(v.framework)
    follows = {canonicalize_name(pkg): companion_specifier(framework[fw]) for pkg, fw in v.companions}
    out = []
    for raw in v.packages:
        r = Requirement(raw)
        key = canonicalize_name(r.name)
        if compute is not None and key in swaps and compute.backend in swaps[key]:
            out.append(swaps[key][compute.backend])
            continue
        if key == canonicalize_name(v.main) or key in follows:
            extras = sorted(set(r.extras) | (set(req.tool.extras) if key == canonicalize_name(v.main) else set()))
            extra_spec = req.tool.specifier if key == canonicalize_name(v.main) else ""
            merged = r.specifier & SpecifierSet(follows.get(key, "")) & SpecifierSet(extra_spec)
            spec = ",".join(sorted(str(c) for c in merged))
            marker = f"; {r.marker}" if r.marker else ""
            out.append(f"{r.name}{'[' + ','.join(extras) + ']' if extras else ''}{spec}{marker}")
        else:
            out.append(raw)
    return out


def _warnings(recipe: Recipe, v: Variant, host: Host, req: Request, python: PythonInstall,
              compute: ComputeChoice | None) -> list[str]:
    out = []
    if recipe.status != "active":
        out.append(f"{recipe.name} is {recipe.status}: no fixes will come upstream; the pins here keep it working")
    eol = PYTHON_EOL.get(python.minor)
    if eol and dt.date.fromisoformat(eol) <= req.today:
        out.append(f"Python {python.minor} reached end of life on {eol}: no security fixes")
    if cap := PIP_CAP.get(python.minor):
        out.append(f"pip is held at {cap}, the last release that supports Python {python.minor}")
    as_of = cutoff.choose(v.as_of, req.as_of, v.as_of_exempt, req.today)
    if as_of is not None and (late := cutoff.sdist_only_note(as_of.date, python.minor)):
        out.append(late)
    if python.path is None and python.source == "simulated":
        out.append(f"simulated host: the interpreter is Python {python.version}, not a path on this machine")
    if host.simulated:
        out.append(assumption(host))
    if python.source == "uv-fetch":
        out.append(f"no Python {python.minor} here: uv will download one (--fetch-python)")
    if req.compute not in ("auto", "cpu") and not _has_gpu_build(v):
        out.append(f"{recipe.name} has no GPU build: --compute {req.compute} does not apply, so this is the CPU one")
    if compute is not None:
        size = _size_note(compute) if any(n == "torch" for n, _ in v.framework) else ""
        out.append(f"compute: {compute.backend} ({compute.reason}){size}")
        if compute.warning:
            out.append(f"{compute.backend} will not run on this host: {compute.warning}")
    for tool, why in v.tools:
        if host.simulated:  # said all the same: a plan for another machine must name what it needs
            out.append(f"needs {tool} (not looked for on a simulated host): {why}")
        elif not host.tool(tool):
            out.append(f"{tool} not found: {why}")
    for k, val in v.env:
        out.append(f"sets {k}={val} while installing")
    return out


def _size_note(compute: ComputeChoice) -> str:
    cpu, cuda = torch_size_mb("cpu"), torch_size_mb("cuda")
    if compute.backend == "cpu":
        return f"; the CPU build is about {cpu} MB installed, against about {cuda} MB for a CUDA one"
    return f"; the CUDA build is about {cuda} MB installed (the CPU one about {cpu} MB)"


def _refusal(recipe: Recipe, host: Host, req: Request, rejected: tuple[Rejected, ...]) -> Refusal:
    codes = {r.code for rej in rejected for r in rej.reasons}
    every = lambda code: all(any(r.code == code for r in rej.reasons) for rej in rejected)  # noqa: E731
    if req.python and not req.python.path and every("python"):
        headline = f"{recipe.name} cannot be installed with Python {req.python.shown}."
    elif req.python_install is not None and every("python"):
        headline = f"{recipe.name} cannot be installed with {req.python_install.path} (Python {req.python_install.version})."
    elif every("platform"):
        headline = f"{recipe.name} cannot be installed on {host.os}."
    elif every("version"):
        headline = f"no variant of {recipe.name} installs {req.tool}."
    elif codes <= {"interpreter", "python"}:
        headline = f"{recipe.name} needs a Python this host does not have."
    else:
        headline = f"{recipe.name} cannot be installed on this host ({host.describe()})."
    fixes = []
    for rej in rejected:
        for r in rej.reasons:
            if r.fix and r.fix not in fixes:
                fixes.append(r.fix)
    return Refusal(tool=recipe.name, request=str(req.tool), headline=headline, rejected=rejected,
                   suggestions=tuple(fixes))




def companion_specifier(framework_spec: str) -> str:
    """The specifier of a companion whose major.minor follows its framework's.

    tensorflow-text 2.15.x goes with tensorflow 2.15.x, so each clause is carried over at
    major.minor precision: '==2.15.*' stays, '==2.15.1' -> '==2.15.*', '>=2.12.1' -> '>=2.12',
    '<=2.15.3' -> '<2.16', '~=2.15.0' -> '==2.15.*'.
    """
    out = []
    for s in SpecifierSet(framework_spec):
        op, ver = s.operator, s.version.rstrip(".*")
        parts = [int(p) for p in Version(ver).release[:2]] + [0]
        major, minor = parts[0], parts[1]
        mm = f"{major}.{minor}"
        if op in ("==", "===", "~="):
            out.append(f"=={mm}.*")
        elif op == "!=":
            if s.version.endswith(".*") and len(Version(ver).release) == 2:
                out.append(f"!={mm}.*")
        elif op in (">=", ">"):
            out.append(f">={mm}")
        elif op == "<=":
            out.append(f"<{major}.{minor + 1}")
        elif op == "<":
            rel = Version(ver).release
            out.append(f"<{mm}" if len(rel) <= 2 or all(x == 0 for x in rel[2:]) else f"<{major}.{minor + 1}")
    return ",".join(sorted(set(out)))


def _cuda_key(tag: str) -> tuple[int, int]:
    digits = tag[2:]
    return (int(digits[:-1] or 0), int(digits[-1]))
