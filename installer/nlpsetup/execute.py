"""Executing plans: build the env, run each step, run the smoke checks, write the manifest.

Everything happens inside an EnvStore transaction under the env's lock: a failed step, a failed
smoke check, Ctrl-C or a kill leaves the env set as before (a reinstall puts the old env back).
Progress goes to a Reporter; this module never prints.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from nlpsetup import __version__, backends, diagnose, faults, manifest, paths, proc, smoke
from nlpsetup.env import Env
from nlpsetup.envstore import EnvStore
from nlpsetup.errors import EXIT_INTERRUPTED, NlpsetupError
from nlpsetup.host import Host
from nlpsetup.recipes import check_install_env
from nlpsetup.redact import mask_argv, mask_text
from nlpsetup.resolve import Plan, Step

DEFAULT_STEP_TIMEOUT = 1800  # seconds; recipes (step_timeout) and --step-timeout override it



class Reporter(Protocol):
    def waiting(self, env: str) -> None: ...
    def step_start(self, name: str, description: str) -> None: ...
    def output(self, line: str) -> None: ...
    def step_end(self, name: str, ok: bool, seconds: float, note: str = "") -> None: ...
    def smoke_result(self, result: smoke.CheckResult) -> None: ...
    def warn(self, text: str) -> None: ...


class Interrupted(NlpsetupError):
    exit_code = EXIT_INTERRUPTED


@dataclass(frozen=True)
class Options:
    backend: str = "auto"
    force: bool = False
    keep_failed: bool = False
    step_timeout: int | None = None
    wait: bool = True
    verbose: bool = False


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

    def to_dict(self) -> dict:
        return {
            "schema_version": 1, "ok": self.ok, "status": self.status, "env": self.env, "path": self.path,
            "message": self.message, "log": self.log, "backend": self.backend, "failed_step": self.failed_step,
            "diagnosis": self.diagnosis, "tail": list(self.tail), "steps": self.steps,
            "smoke": [r.to_dict() for r in self.smoke],
        }


class StepFailed(Exception):
    def __init__(self, step: str, result: proc.Result | None, message: str, diagnosis: str | None,
                 tail: tuple[str, ...] = ()):
        super().__init__(message)
        self.step, self.message, self.diagnosis = step, message, diagnosis
        self.tail = result.tail[-12:] if result is not None else tail


def install(plans: list[Plan], host: Host, home: Path, opts: Options, reporter: Reporter) -> Outcome:
    for p in plans:  # again here: a plan may come from a lock or be built in code, not from a checked recipe
        check_install_env([*(kv for s in p.steps for kv in s.env), *p.variant.smoke.env], f"the plan for {p.tool}")
    primary = plans[0]
    store = EnvStore(home)
    name, env_path = primary.env_name, Path(primary.env_path)
    with store.lock(name, wait=opts.wait, on_wait=lambda: reporter.waiting(name)):
        if recovered := store.recover(name):
            reporter.warn(f"env {name}: {recovered.action}")
        present = _present(env_path, plans)
        if present and not opts.force:
            return Outcome(True, "present", name, str(env_path),
                           f"{name} is already installed ({present}); use --force to rebuild it")
        if env_path.exists() and not opts.force and not _is_ours(env_path):
            raise NlpsetupError(f"{env_path} exists but is not an nlpsetup env",
                                hint="choose another --name, or pass --force to replace it")
        uv_path = backends.find_uv()
        backend, why = backends.choose(opts.backend, primary.python.version, uv_path)
        logs = paths.logs_dir(home)
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        with open(log_path, "w", encoding="utf-8") as log:
            log.write(f"# nlpsetup {__version__} install {' '.join(p.request for p in plans)} "
                      f"-> {env_path} (backend {backend}: {why})\n")
            try:
                txn = store.begin(name)
            except KeyboardInterrupt:
                raise Interrupted(f"interrupted: install of {name} rolled back before anything changed") from None
            step_records: list[dict] = []
            try:
                runner = _Runner(plans, host, env_path, backend, uv_path, opts, reporter, log, step_records)
                runner.build()
                faults.point("before:smoke")
                results = runner.smoke()
                failed = [r for r in results if not r.passed]
                if failed:
                    lines = failed[0].detail.splitlines()
                    raise StepFailed("smoke", None, f"smoke check failed: {failed[0].name}",
                                     diagnose.diagnose(lines) or (lines[-1] if lines else None), tuple(lines))
                # Doctor reuses this result while the env's files stay as installed.
                smoke.save(env_path, smoke.fingerprint(env_path, runner.env_python, [p.variant.smoke for p in plans]),
                           smoke=[r.to_dict() for r in results])
                dists = runner.distributions()
                faults.point("before:manifest")
                manifest.write(env_path, _manifest(plans, host, backend, runner, step_records, dists, results,
                                                   log_path))
                faults.point("before:commit")
                txn.commit()
                faults.point("after:commit")
            except StepFailed as exc:
                undo = txn.rollback(keep_failed=opts.keep_failed)
                log.write(f"# failed: {exc.message}; rolled back: {undo}\n")
                return Outcome(False, "failed", name, str(env_path), f"{exc.message}; {undo}", str(log_path),
                               backend, exc.step, exc.diagnosis, exc.tail, runner.smoke_results, step_records)
            except KeyboardInterrupt:
                undo = txn.rollback(keep_failed=opts.keep_failed)
                log.write(f"# interrupted; rolled back: {undo}\n")
                what = "interrupted" if txn.committed else "rolled back"
                raise Interrupted(f"interrupted: install of {name} {what} ({undo})",
                                  hint=f"the log is {log_path}") from None
            except BaseException:
                txn.rollback(keep_failed=opts.keep_failed)
                raise
        return Outcome(True, "installed", name, str(env_path), f"{name} is ready", str(log_path), backend,
                       smoke=results, steps=step_records)


class _Runner:
    """Runs one install's steps in order, recording each."""

    def __init__(self, plans, host, env_path, backend, uv_path, opts, reporter, log, records):
        self.plans, self.host, self.env_path = plans, host, env_path
        self.backend, self.uv_path, self.opts, self.reporter, self.log = backend, uv_path, opts, reporter, log
        self.records = records
        self.env_python = plans[0].env_python
        self.env = Env.at(env_path)
        self.smoke_results: list[smoke.CheckResult] = []
        self.torch_index: str | None = plans[0].torch_index
        self.interpreter = plans[0].python.path
        self.base_env = proc.child_env({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1",
                                        "PIP_PROGRESS_BAR": "off"})
        if backend == "uv":
            self.base_env.update(backends.uv_index_env(host.index, os.environ))

    def steps(self) -> list[Step]:
        first, *others = self.plans
        extra = [s for p in others for s in p.steps if s.name in ("framework", "install")]
        return [*first.steps, *extra]

    def build(self) -> None:
        constraints = list(dict.fromkeys(c for p in self.plans for c in p.constraints))
        for step in self.steps():
            faults.point(f"before:{step.name}")
            if step.name == "fetch-python":
                self._fetch_python(step)
            elif step.name == "create":
                self._create(step)
                if constraints:
                    self.env.constraints_path.write_text("\n".join(constraints) + "\n")
            else:
                argv = list(step.argv)
                if step.name == "framework":
                    fallback = self._torch_source(argv)
                    if fallback != argv:  # PyTorch's index is unreachable: say what is really installed
                        step = replace(step, description="install PyPI's default torch build (PyTorch's index "
                                                         "is unreachable)")
                    argv = fallback
                self._run(step, backends.translate(tuple(argv), self.backend, self.uv_path, self.env_python))
            faults.point(f"after:{step.name}")

    def _timeout(self, step: Step) -> int:
        return self.opts.step_timeout or step.timeout or DEFAULT_STEP_TIMEOUT

    def _run(self, step: Step, argv: list[str]) -> proc.Result:
        self.reporter.step_start(step.name, step.description)
        argv, index_env = backends.credentials_to_env(argv, self.backend)  # tokens out of `ps`
        env = proc.child_env({**dict(step.env), **index_env}, venv=str(self.env_path), base=self.base_env)
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
                             diagnose.diagnose(r.tail))
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
        target = self.interpreter or (step.argv[0] if step.method == "venv" else step.argv[-2])
        if step.method == "virtualenv" and self.backend == "uv":
            # The uv runner creates the env with uv's own venv: the same layout as virtualenv's
            # (no pip seeded; uv installs), in a tenth of the time.
            step = replace(step, description=step.description.replace("with virtualenv", "with uv venv"))
            self._run(step, self.env.create_argv("uv", target, uv=self.uv_path))
        else:
            self._run(step, self.env.create_argv(step.method or "virtualenv", target))

    def _torch_source(self, argv: list[str]) -> list[str]:
        """PyTorch's index (or its mirror), or PyPI's default build when it cannot be reached."""
        if "--index-url" not in argv:
            return argv
        i = argv.index("--index-url")
        url = argv[i + 1]
        ok, why = reachable(url)
        if ok:
            return argv
        from nlpsetup.gpu import torch_size_mb

        self.reporter.warn(f"PyTorch's index {mask_text(url)} cannot be reached ({why}): installing PyPI's "
                           f"default torch build instead, about {torch_size_mb('cuda')} MB with its CUDA "
                           "libraries (set NLPSETUP_TORCH_INDEX_URL to a mirror to avoid this)")
        self.torch_index = "pypi (fallback: PyTorch's index unreachable)"
        return argv[:i] + argv[i + 2:]

    def smoke(self) -> list[smoke.CheckResult]:
        seen = []
        for p in self.plans:
            if p.variant.smoke not in seen:
                seen.append(p.variant.smoke)
        self.reporter.step_start("smoke", "run the smoke checks in the env")
        start = time.monotonic()
        for s in seen:
            self.smoke_results += smoke.run_all(s, self.env_python, self.env_path, log=self.log, first=True,
                                                base_env=self.base_env, on_result=self.reporter.smoke_result)
        ok = all(r.passed for r in self.smoke_results)
        self.reporter.step_end("smoke", ok, time.monotonic() - start)
        return self.smoke_results

    def distributions(self) -> dict[str, str]:
        return self.env.distributions() or {}


def reachable(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    from nlpsetup import web

    return web.reachable(url, timeout)


def _present(env_path: Path, plans: list[Plan]) -> str | None:
    """The installed tools and variants, if the env already holds exactly what the plans ask for."""
    try:
        data = manifest.read(env_path)
    except manifest.ManifestError:
        return None
    want = sorted((p.tool, p.variant.id, p.request) for p in plans)
    have = sorted((t.get("name"), t.get("variant"), t.get("request")) for t in data.get("tools", []))
    if want == have and Path(data.get("interpreter", {}).get("env_python", "")).exists():
        return ", ".join(f"{t} {v}" for t, v, _ in want)
    return None


def _is_ours(env_path: Path) -> bool:
    env = Env.at(env_path)
    return env.manifest_path.exists() or env.is_venv()


def _manifest(plans: list[Plan], host: Host, backend: str, runner: _Runner, steps, dists, results,
              log_path: Path) -> dict:

    p = plans[0]
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return {
        "nlpsetup_version": __version__,
        "env": {"name": p.env_name, "path": p.env_path},
        "tools": [{"name": x.tool, "request": x.request, "variant": x.variant.id, "recipe_digest": x.recipe_digest,
                   "smoke": x.variant.smoke.to_dict()} for x in plans],
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
        "distributions": dists,
        "smoke": [r.to_dict() for r in results],
        "size_bytes": Env.at(p.env_path).size_bytes(),  # so that `nlpsetup envs` never walks the env
        "log": str(log_path),
        "created": now,
        "python_platform": sys.platform,
    }
