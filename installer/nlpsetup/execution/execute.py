"""Executing plans: build the env, run each step, run the smoke checks, write the manifest.

Everything happens inside an EnvStore transaction under the env's lock (transaction.py, the
skeleton `add` and `upgrade` share): a failed step, a failed smoke check, Ctrl-C or a kill leaves
the env set as before (a reinstall puts the old env back). What an env already at the target
decides is existing.py's. Progress goes to a Reporter; this module never prints.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from nlpsetup import __version__
from nlpsetup.base import diagnose, faults, interrupts, proc
from nlpsetup.base.errors import NlpsetupError
from nlpsetup.base.files import write_json_atomic
from nlpsetup.base.redact import mask_argv, mask_text
from nlpsetup.envs.env import Env
from nlpsetup.envs.store import EnvStore
from nlpsetup.execution import existing, smoke, transaction
from nlpsetup.execution.reporter import Reporter
from nlpsetup.execution.transaction import DEFAULT_STEP_TIMEOUT, Interrupted, StepFailed
from nlpsetup.execution.verify import tool_versions
from nlpsetup.facts.host import Host
from nlpsetup.recipes.schema import check_install_env
from nlpsetup.resolve import backends
from nlpsetup.resolve.cutoff import BUILD_CONSTRAINTS, BUILD_IN, BUILD_TOOLS, PINNED
from nlpsetup.resolve.model import Plan, Step


@dataclass(frozen=True)
class Options:
    backend: str = "auto"
    force: bool = False
    keep_failed: bool = False
    step_timeout: int | None = None
    wait: bool = True
    verbose: bool = False
    python_asked: bool = False  # --python or --from-lock: a different Python in the env is a replacement
    pip: bool = True  # seed pip into uv-made envs (False: --no-pip)
    python: str | None = None  # the --python request as typed: an env on a Python it admits is what was asked
    admits: tuple[tuple[str, tuple[str, ...]], ...] = ()  # per tool, the variants its request admits
    lock: dict | None = None  # the lock the plan rebuilds: kept in the env, so that `reinstall` can again
    retry: str | None = None  # the command that replaces an env holding something else (--force added)


@dataclass
class Outcome:
    ok: bool
    status: str  # installed | present | failed
    env: str
    path: str
    message: str
    log: str | None = None
    backend: str | None = None
    failed_step: str | None = None
    diagnosis: str | None = None
    tail: tuple[str, ...] = ()
    smoke: list[smoke.CheckResult] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    tools: list[dict] = field(default_factory=list)  # {"tool", "version"}: what the env holds now
    size_bytes: int | None = None
    reapplied: list[str] = field(default_factory=list)  # the old env's additions, installed again
    dropped: list[str] = field(default_factory=list)  # additions not carried over (another tool)

    def to_dict(self) -> dict:
        return {
            "schema_version": 1, "ok": self.ok, "status": self.status, "env": self.env, "path": self.path,
            "message": self.message, "log": self.log, "backend": self.backend, "failed_step": self.failed_step,
            "diagnosis": self.diagnosis, "tail": list(self.tail), "steps": self.steps,
            "smoke": [r.to_dict() for r in self.smoke], "tools": self.tools, "size_bytes": self.size_bytes,
            "reapplied": self.reapplied, "dropped": self.dropped,
        }


def install(plans: list[Plan], host: Host, home: Path, opts: Options, reporter: Reporter) -> Outcome:
    for p in plans:  # again here: a plan may come from a lock or be built in code, not from a checked recipe
        # The recipe's (or lock's) own tables, for install and smoke checks: the steps' env also holds
        # what nlpsetup sets itself (a credentialed mirror travels in PIP_INDEX_URL, out of argv).
        check_install_env([*p.variant.env, *p.variant.smoke.env], f"the plan for {p.tool}")
    primary = plans[0]
    store = EnvStore(home)
    name, env_path = primary.env_name, Path(primary.env_path)
    with transaction.locked(store, name, reporter, wait=opts.wait):
        store.check_case(name)
        present = None if opts.force else existing.already(env_path, plans, opts)
        if present:
            return Outcome(True, "present", name, str(env_path),
                           f"{name} is already installed ({present}); use --force to rebuild it")
        additions, dropped = existing.carried(env_path, plans)
        if dropped:
            reporter.warn(f"env {name}: its additions ({', '.join(dropped)}) are not carried over to another tool; "
                          f"add them again with: nlpsetup add {name} {' '.join(dropped)}")
        uv_path = backends.find_uv()
        backend, why = backends.choose(opts.backend, primary.python.version, uv_path)
        if not opts.pip:
            backends.check_no_pip(backend)
        check_cutoff(plans, host, uv_path)
        log_path = transaction.log_path(home, name)
        with open(log_path, "w", encoding="utf-8") as log:
            log.write(f"# nlpsetup {__version__} install {' '.join(p.request for p in plans)} "
                      f"-> {env_path} (backend {backend}: {why})\n")

            def stopped(exc: KeyboardInterrupt, undo: str | None, committed: bool) -> Interrupted:
                said = interrupts.describe(exc)
                if undo is None:
                    return Interrupted(f"{said}: install of {name} rolled back before anything changed",
                                       exit_code=interrupts.exit_code(exc))
                log.write(f"# {said}; rolled back: {undo}\n")
                what = "interrupted" if committed else "rolled back"
                return Interrupted(f"{said}: install of {name} {what} ({undo})", hint=f"the log is {log_path}",
                                   exit_code=interrupts.exit_code(exc))

            step_records: list[dict] = []
            runner = _Runner(plans, host, env_path, backend, uv_path, opts, reporter, log, step_records, additions)
            with transaction.Guard(store, name, log, stopped, keep_failed=opts.keep_failed) as guard:
                runner.build()
                faults.point("before:smoke")
                results = runner.smoke()
                transaction.check_smoke(results)
                dists = runner.distributions()
                if opts.lock is not None:  # what `reinstall` rebuilds this env from
                    write_json_atomic(runner.env.lock_path, opts.lock)
                faults.point("before:manifest")
                record = _manifest_to_write(plans, host, backend, runner, step_records, dists, results, log_path)
                guard.keep(env_path, runner.env_python, [p.variant.smoke for p in plans],
                           {**record, **({"additions": additions} if additions else {})})
                faults.point("after:commit")
        if (exc := guard.failed) is not None:
            return Outcome(False, "failed", name, str(env_path), f"{exc.message}; {guard.undo}", str(log_path),
                           backend, exc.step, exc.diagnosis, exc.tail, runner.smoke_results, step_records)
        return Outcome(True, "installed", name, str(env_path), f"{name} is ready", str(log_path), backend,
                       smoke=results, steps=step_records, size_bytes=record["size_bytes"],
                       tools=tool_versions(record, dists), reapplied=runner.reapply, dropped=dropped)


class _Runner:
    """Runs one install's steps in order, recording each."""

    def __init__(self, plans, host, env_path, backend, uv_path, opts, reporter, log, records, additions=()):
        self.plans, self.host, self.env_path = plans, host, env_path
        self.reapply = existing.not_locked(additions, plans)  # a lock that holds an addition installs it itself
        self.backend, self.uv_path, self.opts, self.reporter, self.log = backend, uv_path, opts, reporter, log
        self.records = records
        self.env_python = plans[0].env_python
        self.env = Env.at(env_path)
        self.smoke_results: list[smoke.CheckResult] = []
        self.torch_index: str | None = plans[0].torch_index
        self.interpreter = plans[0].python.path
        self.base_env = transaction.base_env(host.index if backend == "uv" else None)

    def steps(self) -> list[Step]:
        first, *others = self.plans
        # (a `resolve` step resolves every plan's requirements at once: the others' are not needed again)
        pinned = any(s.name == "resolve" for s in first.steps)
        extra = [s for p in others for s in p.steps
                 if s.name in ("framework", "exempt") or (s.name == "install" and not pinned)]
        return [*first.steps, *extra, *self._additions_step()]

    def _additions_step(self) -> list[Step]:
        """The old env's additions, installed again under the new env's constraints (as `add` did)."""
        if not self.reapply:
            return []
        constraints = ("-c", str(self.env.constraints_path)) if any(p.constraints for p in self.plans) else ()
        return [Step("additions", (self.env_python, "-m", "pip", "install", *self.reapply, *constraints),
                     f"install the env's additions again: {', '.join(self.reapply)}",
                     timeout=self.plans[0].variant.step_timeout)]

    def build(self) -> None:
        constraints = list(dict.fromkeys(c for p in self.plans for c in p.constraints))
        for step in self.steps():
            faults.point(f"before:{step.name}")
            if step.name == "fetch-python":
                self._fetch_python(step)
            elif step.name == "create":
                self._create(step)
                self.env.mark(nlpsetup=__version__, pid=os.getpid(), created=time.time())
                if constraints:
                    self.env.constraints_path.write_text("\n".join(constraints) + "\n", encoding="utf-8")
                if requirements := [r for p in self.plans for r in p.requirements]:
                    (self.env_path / "nlpsetup-requirements.in").write_text("\n".join(requirements) + "\n", encoding="utf-8")
                    (self.env_path / BUILD_IN).write_text("\n".join(BUILD_TOOLS) + "\n", encoding="utf-8")
            elif step.name == "resolve" and step.argv[-1].endswith(BUILD_IN):
                self._build_constraints(step)
            elif step.name == "resolve":  # uv resolves as of a date for an env whose pip cannot
                env = {**backends.uv_index_env(self.host.index, os.environ), **dict(step.env)}
                self._run_as_backend(replace(step, env=tuple(env.items())))
            else:
                argv = list(step.argv)
                if step.name == "framework":
                    fallback = self._torch_source(argv)
                    if fallback != argv:  # PyTorch's index is unreachable: say what is really installed
                        step = replace(step, description="install PyPI's default torch build (PyTorch's index "
                                                         "is unreachable)")
                    argv = fallback
                self._run_as_backend(replace(step, argv=tuple(argv)))
            faults.point(f"after:{step.name}")

    def _build_constraints(self, step: Step) -> None:
        """setuptools and wheel as of the date, written as upper bounds for the isolated builds of
        the sdists the install step meets (its PIP_CONSTRAINT / UV_BUILD_CONSTRAINT), and the exact
        versions the env will run with: an sdist compiled against numpy (pyemd) must be built with
        the env's numpy, not today's, or its import fails on the ABI ("numpy.ndarray has the wrong
        size"). An index that has no build tools cannot build an sdist at all: then only the env's
        versions are written."""
        out = self.env_path / BUILD_CONSTRAINTS
        pinned = self.env_path / PINNED
        runs_with = pinned.read_text(encoding="utf-8") if pinned.is_file() else ""
        env = proc.child_env({**backends.uv_index_env(self.host.index, os.environ), **dict(step.env)},
                             base=self.base_env)
        self.log.write(f"\n## {step.name}: {step.description}\n")
        r = proc.run([self.uv_path or "uv", *step.argv[1:]], env=env, timeout=self._timeout(step), log=self.log)
        text = out.read_text(encoding="utf-8") if r.ok and out.is_file() else ""
        if not r.ok:
            self.log.write("# no build tools on the index as of the date: builds are not bounded\n")
        tools = {line.split("==")[0].strip().lower() for line in text.splitlines() if "==" in line}
        exact = [line for line in runs_with.splitlines()
                 if "==" in line and not line.lstrip().startswith("#") and line.split("==")[0].strip().lower() not in tools]
        out.write_text(text.replace("==", "<=") + "".join(f"{line}\n" for line in exact), encoding="utf-8")

    def _timeout(self, step: Step) -> int:
        return self.opts.step_timeout or step.timeout or DEFAULT_STEP_TIMEOUT

    def _run(self, step: Step, argv: list[str]) -> proc.Result:
        self.reporter.step_start(step.name, step.description)
        argv, index_env = backends.credentials_to_env(argv, self.backend)  # tokens out of `ps`
        env = proc.child_env({**dict(step.env), **index_env}, venv=Env.at(self.env_path).activation(),
                             base=self.base_env)
        self.log.write(f"\n## {step.name}: {step.description}\n")
        for k, v in (*step.env, *index_env.items()):
            self.log.write(f"# env {k}={mask_text(v)}\n")
        on_line = self.reporter.output if self.opts.verbose else None
        r = proc.run(argv, env=env, timeout=self._timeout(step), log=self.log, on_line=on_line,
                     on_start=lambda: faults.point(f"during:{step.name}"))
        self.records.append({"name": step.name, "argv": mask_argv(argv), "seconds": round(r.seconds, 2),
                             "returncode": r.returncode, "timed_out": r.timed_out})
        self.reporter.step_end(step.name, r.ok, r.seconds)
        if r.timed_out:
            raise StepFailed(step.name, r, f"step {step.name} stopped after {self._timeout(step)} s",
                             diagnose.TIMEOUT_DIAGNOSIS)
        if not r.ok:
            raise StepFailed(step.name, r, f"step {step.name} failed (exit {r.returncode})",
                             diagnose.diagnose(r.tail, locked="--require-hashes" in argv))
        return r

    def _fetch_python(self, step: Step) -> None:
        if not self.uv_path:
            raise StepFailed(step.name, None, "--fetch-python needs uv", "install it: pip install 'nlpsetup[uv]'")
        self._run(step, [self.uv_path, *step.argv[1:]])
        code, out = proc.capture([self.uv_path, "python", "find", step.argv[-1]], env=self.base_env)
        if code != 0 or not out.strip():
            raise StepFailed(step.name, None, f"uv installed Python {step.argv[-1]} but cannot find it", None)
        self.interpreter = out.strip().splitlines()[-1]

    def _create(self, step: Step) -> None:
        if step.method == "conda":  # conda brings its own Python: the plan's command as it is
            self._run(step, list(step.argv))
            return
        # The interpreter found (or fetched by uv) on this host; else the one the plan names.
        target = self.interpreter or step.interpreter
        if step.method == "virtualenv" and self.backend == "uv":
            self._run_as_backend(step, interpreter=target)  # uv venv, then pip seeded (unless --no-pip)
        else:
            self._run(step, self.env.create_argv(step.method or "virtualenv", target))

    def _run_as_backend(self, step: Step, interpreter: str | None = None) -> None:
        """The step as the backend runs it: the very commands `plan` shows (backends.runnable)."""
        for s in backends.runnable(step, self.backend, self.uv_path, self.env_python, self.plans[0].python.version,
                                   interpreter=interpreter, pip=self.opts.pip):
            extra = s.name != step.name  # a step the backend adds (uv's seed): its own fault points
            if extra:
                faults.point(f"before:{s.name}")
            self._run(s, list(s.argv))
            if extra:
                faults.point(f"after:{s.name}")

    def _torch_source(self, argv: list[str]) -> list[str]:
        """PyTorch's index (or its mirror), or PyPI's default build when it cannot be reached."""
        if "--index-url" not in argv:
            return argv
        i = argv.index("--index-url")
        url = argv[i + 1]
        ok, why = reachable(url)
        if ok:
            return argv
        from nlpsetup.resolve.compute import torch_size_mb

        self.reporter.warn(f"PyTorch's index {mask_text(url)} cannot be reached ({why}): installing PyPI's "
                           f"default torch build instead, about {torch_size_mb('cuda')} MB with its CUDA "
                           "libraries (set NLPSETUP_TORCH_INDEX_URL to a mirror to avoid this)")
        self.torch_index = "pypi (fallback: PyTorch's index unreachable)"
        return argv[:i] + argv[i + 2:]

    def smoke(self) -> list[smoke.CheckResult]:
        seen = []  # two tools with the same checks: run once
        for p in self.plans:
            if p.variant.smoke not in seen:
                seen.append(p.variant.smoke)
        self.smoke_results = transaction.run_smoke(seen, self.env_python, self.env_path, log=self.log,
                                                   base_env=self.base_env, reporter=self.reporter)
        return self.smoke_results

    def distributions(self) -> dict[str, str]:
        return self.env.distributions() or {}


def check_cutoff(plans: list[Plan], host: Host, uv_path: str | None) -> None:
    """Before anything changes: a cutoff that cannot hold is an error, never dropped silently."""
    from nlpsetup.base.errors import EXIT_REFUSED, EXIT_USAGE
    from nlpsetup.index import pages
    from nlpsetup.index import releases as indexfiles

    for p in plans:
        if p.as_of is None:
            continue
        if any(s.name == "resolve" for s in p.steps) and not uv_path:
            raise NlpsetupError(f"the pip of Python {p.python.version} cannot apply as_of {p.as_of.date} (pip 26 needs "
                                "Python 3.9+) and no uv was found to resolve for it",
                                hint="install uv (pip install 'nlpsetup[uv]'), or pass --as-of latest",
                                exit_code=EXIT_REFUSED)
        index = host.index.index_url or pages.PYPI
        if why := indexfiles.check_upload_times(index, p.variant.main):
            raise NlpsetupError(f"the index {mask_text(index)} cannot apply as_of {p.as_of.date}: {why}",
                                hint="pass --as-of latest, or use a mirror that publishes PEP 700 upload times",
                                exit_code=EXIT_USAGE)


def reachable(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    from nlpsetup.base import web

    return web.reachable(url, timeout)


def _manifest_to_write(plans: list[Plan], host: Host, backend: str, runner: _Runner, steps, dists, results,
                       log_path: Path) -> dict:
    """The manifest of the env just built and proven (ENV/nlpsetup.json): what `envs`, lock, verify,
    upgrade and reinstall read back."""
    p = plans[0]
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return {
        "nlpsetup_version": __version__,
        "env": {"name": p.env_name, "path": p.env_path},
        "tools": [{"name": x.tool, "request": x.request, "variant": x.variant.id, "recipe_digest": x.recipe_digest,
                   "smoke": x.variant.smoke.to_dict(),
                   # the tool's own distribution, whose version `envs` shows (an older lock names
                   # none: then the one named as the tool)
                   **({"main": x.variant.main_requirement.name}
                      if x.variant.main or not x.variant.id.startswith("lock:") else {})}
                  for x in plans],
        "interpreter": {"version": p.python.version, "implementation": p.python.implementation,
                        "path": runner.interpreter, "source": p.python.source, "env_python": p.env_python},
        "backend": backend,
        "compute": {"backend": p.compute.backend if p.compute else "cpu",
                    "reason": p.compute.reason if p.compute else "no GPU-specific packages",
                    "index": mask_text(runner.torch_index) if runner.torch_index else None},
        "constraints": list(dict.fromkeys(c for x in plans for c in x.constraints)),
        "install_env": {k: mask_text(v) for x in plans for k, v in x.variant.env},
        "host": host.to_dict(),
        "steps": steps,
        "as_of": p.as_of.to_dict() if p.as_of else None,
        "distributions": dists,
        "smoke": [r.to_dict() for r in results],
        "size_bytes": Env.at(p.env_path).size_bytes(),  # so that `nlpsetup envs` never walks the env
        "log": str(log_path),
        "created": now,
        "python_platform": sys.platform,
    }
