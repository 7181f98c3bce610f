"""`nlpsetup image`: a tool or an env, bundled for the image's platform, written as a build context
(`spec`), then built, proven and tagged by a container engine (`engines`). Never prints.

Proven before tagged: the engine builds an untagged image, the env's smoke checks run inside it
(the very command a Kubernetes Job of the image runs), and only then is the tag set; an image that
fails a check, or a build that is interrupted, is removed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from nlpsetup import __version__
from nlpsetup.base import paths, proc
from nlpsetup.base.errors import EXIT_FAILED, EXIT_REFUSED, NlpsetupError
from nlpsetup.base.files import write_text_atomic
from nlpsetup.image import engines
from nlpsetup.image import spec as image
from nlpsetup.recipes.model import TORCH_FAMILY
from nlpsetup.share import bundle, lockfile


@dataclass(frozen=True)
class Request:
    target: str
    tag: str | None = None
    engine: str | None = None
    base: str | None = None
    python: str | None = None
    compute: str = "cpu"
    arch: str | None = None
    push: bool = False
    containerfile: str | None = None
    k8s_job: str | None = None
    timeout: int = 3600


@dataclass
class Outcome:
    tag: str
    spec: image.Spec
    engine: str | None = None
    image_id: str | None = None
    checks: list[str] = field(default_factory=list)  # one line per check, as the runner printed it
    image_size_bytes: int | None = None
    env_size_bytes: int | None = None
    pushed: bool = False
    context: str | None = None
    k8s_job: str | None = None
    log: str | None = None

    def to_dict(self) -> dict:
        s = self.spec
        return {"tag": self.tag, "image_id": self.image_id, "engine": self.engine, "verified": bool(self.image_id),
                "pushed": self.pushed, "env": s.env, "prefix": s.prefix, "base": s.base.image, "python": s.python,
                "torch": s.torch, "cuda_min_driver": s.min_driver, "checks": self.checks,
                "image_size_bytes": self.image_size_bytes, "env_size_bytes": self.env_size_bytes,
                "containerfile": self.context, "k8s_job": self.k8s_job, "log": self.log}


def default_tag(spec: image.Spec) -> str:
    return f"nlpsetup/{spec.env}:{spec.tool.get('variant', 'lock')}-py{spec.python}-{spec.torch}".replace("+", "_")


def run(req: Request, *, book, host, store, home: Path) -> Outcome:
    image.check_arch(req.arch, host.arch)
    if req.push and req.containerfile:
        raise NlpsetupError("--push pushes a built, verified image; --containerfile only writes the build context",
                            hint="drop one of them")
    if req.push and not req.tag:
        raise NlpsetupError("--push needs the registry to push to", hint="name it in the tag: -t REGISTRY/NAME:TAG")
    _check_outputs(req)
    engine = None if req.containerfile else engines.detect(req.engine)  # before minutes of downloads
    if req.containerfile:
        # A folder this call makes is removed on failure: a half-written context must not pass for one.
        context = Path(req.containerfile)
        scratch = None if context.exists() else context
    else:
        cache = paths.cache_dir(home)
        cache.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="image-", dir=cache))
        context = scratch / "context"
    on_base = (lambda base: _have_base(engine, base)) if engine else (lambda base: None)
    done = False
    try:
        spec = _write_context(req, context, book=book, host=host, store=store, home=home, on_base=on_base)
        out = Outcome(req.tag or default_tag(spec), spec, context=str(context) if req.containerfile else None)
        if engine is not None:
            _build_and_prove(engine, context, out, req, home)
        if req.k8s_job:
            job = image.job_manifest(spec, out.tag, _now())
            write_text_atomic(Path(req.k8s_job), json.dumps(job, indent=2) + "\n")
            out.k8s_job = req.k8s_job
        done = True
        return out
    finally:
        if scratch is not None and not (done and req.containerfile):
            shutil.rmtree(scratch, ignore_errors=True)


def _check_outputs(req: Request) -> None:
    if req.containerfile:
        d = Path(req.containerfile)
        if d.exists() and (not d.is_dir() or any(d.iterdir())):
            raise NlpsetupError(f"--containerfile {d} is not an empty folder", hint="write the build context to a new folder")
    if req.k8s_job and Path(req.k8s_job).is_dir():
        raise NlpsetupError(f"--k8s-job {req.k8s_job} is a folder", hint="name a file: --k8s-job job.yaml")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- the build context -------------------------------------------------------------------------


def _write_context(req: Request, context: Path, *, book, host, store, home: Path, on_base) -> image.Spec:
    """Bundle the target for the base's platform into context/bundle, then write the rest;
    `on_base(base)` is called once the base is known, before the bundle's downloads."""
    from nlpsetup.facts import host as hosts
    from nlpsetup.plan import planning

    env_path = None
    if req.target in store.names() and not (req.python or req.compute != "cpu"):
        env_path = store.existing(req.target)
    if env_path is not None:
        py = ".".join(lockfile.lockable_manifest(env_path)["interpreter"]["version"].split(".")[:2])
        base = image.choose_base(py, req.base)
        on_base(base)
        target = bundle.Target("linux", host.arch, base.python, base.glibc)
        b = bundle.of_env(env_path, context / image.CONTEXT_BUNDLE, target, home=home, timeout=req.timeout)
        summary, homepage, min_driver = "", "", None
    else:
        min_driver = _min_driver(req.compute)
        linux = hosts.simulate(host, os_name="linux", arch=host.arch)
        if min_driver:  # a build host without a GPU chooses as a host whose driver runs that CUDA build
            from nlpsetup.facts.gpu import GpuFacts

            linux = replace(linux, gpu=GpuFacts(driver=min_driver, source="image: the build's minimum driver"))
        base, plan = _plan(book, req, linux, home, planning)
        on_base(base)
        target = bundle.Target("linux", host.arch, base.python, base.glibc)
        b = bundle.of_plan(plan, context / image.CONTEXT_BUNDLE, target, home=home, timeout=req.timeout)
        recipe = book.get(plan.tool)
        summary, homepage = recipe.summary, recipe.homepage
    lock, lock_text = b.lock, (context / image.CONTEXT_BUNDLE / bundle.LOCK).read_text(encoding="utf-8")
    has_torch = any(k.lower() in TORCH_FAMILY for k in lock["distributions"])
    spec = image.Spec(env=lock.get("env") or req.target, base=base, tools=tuple(lock["tools"]),
                      python=base.python,
                      torch=((lock.get("compute") or {}).get("backend") or "cpu") if has_torch else "none", lock_digest=image.lock_digest(lock_text),
                      min_driver=min_driver if has_torch else None, summary=summary, homepage=homepage)
    created = _now()
    from nlpsetup.share import pylock

    (context / image.CONTEXT_BUNDLE / "requirements.txt").write_text(pylock.requirements_text(lock), encoding="utf-8")
    (context / image.CONTEXT_BUNDLE / "nlpsetup.json").write_text(json.dumps(image.manifest(spec, lock, created),
                                                                              indent=2), encoding="utf-8")
    checks = context / image.CHECKS
    checks.mkdir()
    for name, text in image.check_files(spec).items():
        (checks / name).write_text(text, encoding="utf-8")
    (context / "Containerfile").write_text(image.containerfile(spec, created), encoding="utf-8")
    return spec


def _min_driver(compute: str) -> str | None:
    if compute == "cpu":
        return None
    from nlpsetup.resolve.compute import build_cuda, load_tables

    cuda = build_cuda(compute)
    row = load_tables().cuda_row(str(cuda)) if cuda else None
    if row is None:
        raise NlpsetupError(f"--compute {compute!r} is not cpu or a CUDA build nlpsetup knows (such as cu126)",
                            hint="for example: --compute cpu, or --compute cu126")
    return row.linux_min_driver


def _plan(book, req: Request, linux, home: Path, planning):
    """The base and the plan: for --python (or --base) that Python, else the newest Python of the
    base table that the recipe allows."""
    choices = planning.Choices(python=None, compute=req.compute)
    if req.python or req.base:
        base = image.choose_base(req.python, req.base)
        return base, planning.plan_one(book, req.target, linux, replace(choices, python=base.python), home)
    first_error = None
    for base in image.load_bases():
        try:
            return base, planning.plan_one(book, req.target, linux, replace(choices, python=base.python), home)
        except NlpsetupError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


# --- build, prove, tag -------------------------------------------------------------------------


def _have_base(engine: engines.Engine, base: image.Base) -> None:
    """The base on this machine, pulled now where it is not: a base that cannot be pulled fails
    before minutes of downloads, not after them."""
    env = proc.child_env()
    if proc.capture(engine.has_image_argv(base.image), env=env, timeout=60)[0] == 0:
        return
    code, out = proc.capture(engine.pull_argv(base.image), env=env, timeout=3600, merge_stderr=True)
    if code != 0:
        raise engines.explain(engine.name, out, base=base.image) or NlpsetupError(
            f"{engine.name} pull {base.image} failed (exit {code}): {engines.last_line(out)[-300:]}",
            hint="check the name and the network, or pass --base with an image this machine has",
            exit_code=EXIT_FAILED)


def _build_and_prove(engine: engines.Engine, context: Path, out: Outcome, req: Request, home: Path) -> None:
    logs = paths.logs_dir(home)
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"image-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    out.engine, out.log = engine.name, str(log_path)
    env = proc.child_env()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(f"# nlpsetup {__version__} image {out.spec.env} with {engine.name} -> {out.tag}\n")
        iidfile = context.parent / "iid"
        r = proc.run(engine.build_argv(context, iidfile), env=env, log=log, timeout=req.timeout, tail_lines=60)
        if not r.ok:
            raise _build_error(engine, r, out.spec, log_path)
        image_id = iidfile.read_text(encoding="utf-8").strip()
        tagged = False
        try:
            out.checks, result = _prove(engine, image_id, out.spec, env, log)
            if result is None or result.get("failed"):
                raise _check_error(out.checks, result, log_path)
            out.env_size_bytes = result.get("env_size_bytes")
            _must(proc.run(engine.tag_argv(image_id, out.tag), env=env, log=log, timeout=120), engine, "tag", log_path)
            tagged = True
        finally:
            if not tagged:
                proc.run(engine.remove_argv(image_id), env=env, log=log, timeout=300)
        out.image_id = image_id
        code, text = proc.capture(engine.size_argv(image_id), env=env, timeout=60)
        out.image_size_bytes = engines.size_of(engine, image_id, text) if code == 0 else None
        if req.push:
            r = proc.run(engine.push_argv(out.tag), env=env, log=log, timeout=req.timeout)
            _must(r, engine, f"push {out.tag} (the verified image stays tagged here)", log_path)
            out.pushed = True


def _prove(engine: engines.Engine, image_id: str, spec: image.Spec, env: dict, log) -> tuple[list[str], dict | None]:
    """Run the image's checks in a fresh container: (one line per check, the runner's result)."""
    lines: list[str] = []
    before, check, after = engine.run_argv(image_id, image.check_argv(spec), f"nlpsetup-check-{os.getpid()}")
    try:
        for argv in before:
            r = proc.run(argv, env=env, log=log, timeout=300)
            if not r.ok:
                raise NlpsetupError(f"{engine.name} cannot start a container of the image: "
                                    f"{r.tail[-1] if r.tail else ''}", hint=f"see the log: {log.name}",
                                    exit_code=EXIT_FAILED)
        proc.run(check, env=env, log=log, timeout=image.checks(spec)["limit"] + 120, on_line=lines.append)
    finally:
        for argv in after:  # the working container goes, whatever happened
            proc.run(argv, env=env, log=log, timeout=120)
    shown = [ln for ln in lines if ln.startswith(("nlpsetup-check: ", "  | "))]
    result = next((json.loads(ln.split(" ", 1)[1]) for ln in reversed(lines) if ln.startswith("nlpsetup-result ")),
                  None)
    return shown, result


def _check_error(lines: list[str], result: dict | None, log_path: Path) -> NlpsetupError:
    """The failed check(s) by name, with the first one's reason."""
    if result is None:
        return NlpsetupError("the image's checks did not report a result; the image was removed, untagged",
                             hint=f"see the log: {log_path}", exit_code=EXIT_FAILED)
    failed = result["failed"]
    at = next((i for i, ln in enumerate(lines) if ln.startswith("nlpsetup-check: FAIL")), None)
    first = lines[at].removeprefix("nlpsetup-check: FAIL ") if at is not None else failed[0]
    detail = list(itertools.takewhile(lambda ln: ln.startswith("  | "), lines[at + 1:] if at is not None else []))
    first += f": {detail[-1][4:].strip()}" if detail and detail[-1][4:].strip() else ""
    return NlpsetupError(f"the image failed its smoke check{'s' if len(failed) > 1 else ''} "
                         f"{', '.join(repr(n) for n in failed)}; it was removed, untagged ({first})",
                         hint=f"see the log: {log_path}", exit_code=EXIT_FAILED)


def _must(r: proc.Result, engine: engines.Engine, what: str, log_path: Path) -> None:
    if r.ok:
        return
    known = engines.explain(engine.name, "\n".join(r.tail))
    raise known or NlpsetupError(f"{engine.name} {what} failed (exit {r.returncode}): {r.tail[-1] if r.tail else ''}",
                                 hint=f"see the log: {log_path}", exit_code=EXIT_FAILED)


def _build_error(engine: engines.Engine, r: proc.Result, spec: image.Spec, log_path: Path) -> NlpsetupError:
    text = "\n".join(r.tail)
    known = engines.explain(engine.name, text, base=spec.base.image)
    if known:
        return known
    py = spec.base.interpreter
    if f"{py}: not found" in text or f"{py}: command not found" in text or ("executable file not found" in text
                                                                            and py in text):
        return NlpsetupError(f"the base image {spec.base.image} has no {py}",
                             hint=f"pass --base with an image that has Python {spec.python}, or --python with the "
                                  f"Python the base has", exit_code=EXIT_REFUSED)
    if "ensurepip is not available" in text:
        return NlpsetupError(f"the base image {spec.base.image} has {py} without venv",
                             hint=f"use a base with {py}-venv installed (Debian/Ubuntu: apt-get install "
                                  f"{py}-venv)", exit_code=EXIT_REFUSED)
    last = next((ln for ln in reversed(r.tail) if ln.strip()), "")
    return NlpsetupError(f"{engine.name} build failed (exit {r.returncode}): {last.strip()[-300:]}",
                         hint=f"see the log: {log_path}", exit_code=EXIT_FAILED)
