"""Smoke checks: run a recipe's imports, code and commands inside the env's interpreter.

Recipe code never runs in nlpsetup's own process. Each check runs isolated from the caller
(`python -I`: no PYTHONPATH, no user site, no current directory on sys.path), from an empty
working directory, with its own time limit.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from nlpsetup import proc
from nlpsetup.env import Env
from nlpsetup.recipes import Smoke

# Imports timed inside the env: prints one JSON line that the caller reads back.
_IMPORT_PROBE = """\
import json, sys, time
t = time.time()
for name in sys.argv[1:]:
    __import__(name)
print("NLPSETUP-IMPORTS " + json.dumps({"seconds": time.time() - t}))
"""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    seconds: float
    import_seconds: float | None = None
    detail: str = ""  # the last lines of output when it failed

    def to_dict(self) -> dict:
        return asdict(self)


def checks(smoke: Smoke, env_python: str, env_path: Path) -> list[tuple[str, list[str]]]:
    """(name, argv) for each check, in order: imports, code, commands."""
    out: list[tuple[str, list[str]]] = []
    if smoke.imports:
        out.append((f"import {', '.join(smoke.imports)}", [env_python, "-I", "-c", _IMPORT_PROBE, *smoke.imports]))
    if smoke.code.strip():
        first = next((ln.strip() for ln in smoke.code.strip().splitlines() if ln.strip()), "code")
        out.append((f"code: {first[:60]}", [env_python, "-I", "-c", smoke.code]))
    for cmd in smoke.commands:
        head, rest = cmd[0], list(cmd[1:])
        if head in ("python", "python3"):
            argv = [env_python, *rest]
        else:
            candidate = Env.at(env_path).script(head)
            argv = [str(candidate) if candidate.exists() else head, *rest]
        out.append((" ".join(cmd), argv))
    return out


def run_all(smoke: Smoke, env_python: str, env_path: Path, *, log=None, base_env=None,
            on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    env = proc.child_env({"PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", **dict(smoke.env)},
                         venv=str(env_path), base=base_env)
    results = []
    with tempfile.TemporaryDirectory(prefix="nlpsetup-smoke-") as cwd:
        for name, argv in checks(smoke, env_python, env_path):
            if log is not None:
                log.write(f"\n## smoke: {name}\n")
            r = proc.run(argv, env=env, timeout=smoke.timeout, log=log, cwd=cwd)
            import_seconds = None
            for line in r.tail:
                if line.startswith("NLPSETUP-IMPORTS "):
                    try:
                        import_seconds = json.loads(line.split(" ", 1)[1])["seconds"]
                    except (ValueError, KeyError):
                        pass
            detail = ""
            if r.timed_out:
                detail = f"timed out after {smoke.timeout} s"
            elif not r.ok:
                detail = "\n".join(line for line in r.tail[-8:] if not line.startswith("NLPSETUP-"))
            result = CheckResult(name, r.ok, round(r.seconds, 3),
                                 round(import_seconds, 3) if import_seconds is not None else None, detail)
            results.append(result)
            if on_result:
                on_result(result)
    return results
