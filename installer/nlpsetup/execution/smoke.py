"""Smoke checks: run a recipe's imports, code and commands inside the env's interpreter.

Recipe code never runs in nlpsetup's own process. All checks of one recipe run under ONE
interpreter of the env (a small harness, harness.py), so the import is paid once: the imports
first, then each command check starts (forked from the harness, which has the tool imported
already, where the command is that env's Python; a process of its own otherwise) and runs
beside the code check. Each check is still timed, named on failure and held to its own time
limit. Everything runs isolated from the caller (`python -I`: no PYTHONPATH, no user site, no
current directory on sys.path), from an empty working directory, and through `proc`, so a
check past its limit is stopped with its whole process group, and whatever a check left
running is stopped when the harness ends.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from nlpsetup.base import proc
from nlpsetup.envs.env import Env
from nlpsetup.recipes.model import Smoke

HARNESS = Path(__file__).with_name("harness.py")  # the program that runs the checks in the env


def harness_text() -> str:
    """The harness program as text: written into a temporary folder for each run here, and into an
    image by image/spec.py; the env's Python runs it, nlpsetup never imports it."""
    return HARNESS.read_text(encoding="utf-8")


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    seconds: float
    import_seconds: float | None = None
    detail: str = ""  # the last lines of output when it failed (capped: the whole is in the log)
    error: str = ""  # the exception it ended in, "LookupError: Resource punkt_tab not found."

    def to_dict(self) -> dict:
        return asdict(self)


def _code_name(code: str) -> str:
    first = next((ln.strip() for ln in code.strip().splitlines() if ln.strip()), "code")
    return f"code: {first[:60]}"


def in_process_checks(smoke: Smoke) -> list[tuple[str, dict]]:
    """(name, check) for the harness, in order: the imports, then the code."""
    out: list[tuple[str, dict]] = []
    if smoke.imports:
        out.append((f"import {', '.join(smoke.imports)}", {"kind": "imports", "names": list(smoke.imports)}))
    if smoke.code.strip():
        out.append((_code_name(smoke.code), {"kind": "code", "code": smoke.code}))
    return out


def command_checks(smoke: Smoke, env_python: str, env_path: Path) -> list[tuple[str, dict]]:
    """(name, check) for each command: the argv to spawn, and how the harness can run it in a fork
    instead (`how`: module, code or script; empty where it must be spawned)."""
    out: list[tuple[str, dict]] = []
    for cmd in smoke.commands:
        head, rest = cmd[0], list(cmd[1:])
        how, target, argv = "", "", []
        if head in ("python", "python3"):
            spawn = [env_python, *rest]
            if len(rest) >= 2 and rest[0] in ("-m", "-c"):
                how, target = ("module" if rest[0] == "-m" else "code"), rest[1]
                argv = [rest[0] if how == "code" else rest[1], *rest[2:]]
        else:
            candidate = Env.at(env_path).script(head)
            spawn = [str(candidate) if candidate.exists() else head, *rest]
            if _runs_on(candidate, env_python):
                how, target, argv = "script", str(candidate), [str(candidate), *rest]
        out.append((" ".join(cmd), {"kind": "command", "how": how, "target": target, "argv": argv,
                                    "spawn": spawn, "timeout": smoke.timeout}))
    return out


def _runs_on(script: Path, env_python: str) -> bool:
    """A console script whose #! line starts this very interpreter, so running its code in a fork
    of the harness is what running it would do (a stale #! is spawned, and fails as it would)."""
    try:
        with open(script, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return False
    if not first.startswith(b"#!"):
        return False
    interpreter = first[2:].strip().split(b" ")[0].decode("utf-8", "replace")
    try:
        return os.path.isabs(interpreter) and os.path.samefile(interpreter, env_python)
    except OSError:  # the #! names an interpreter that is gone
        return False


def run_all(smoke: Smoke, env_python: str, env_path: Path, *, log=None, base_env=None,
            on_result: Callable[[CheckResult], None] | None = None,
            cancel: threading.Event | None = None) -> list[CheckResult]:
    """Every check of one recipe; results in order (imports, code, commands). Setting `cancel`
    (from another thread) stops what runs and returns at once."""
    # No PYTHONDONTWRITEBYTECODE: uv installs no .pyc, and compiling only what the first import
    # needs (here, once) beats compiling the whole env at install (bench_verify, figure 6).
    env = proc.child_env({"PYTHONNOUSERSITE": "1", **dict(smoke.env)}, venv=Env.at(env_path).activation(),
                         base=base_env)
    inner, commands = in_process_checks(smoke), command_checks(smoke, env_python, env_path)
    # The commands start once the imports are done (they fork from there, and the byte-code the
    # imports wrote is there to read), beside the code check.
    checks = inner[:1] + commands + inner[1:] if smoke.imports else commands + inner
    order = [name for name, _ in inner + commands]
    with tempfile.TemporaryDirectory(prefix="nlpsetup-smoke-") as cwd:
        results = _harness(checks, env_python, env, cwd, smoke.timeout, log, on_result, cancel or threading.Event())
    return sorted(results, key=lambda r: order.index(r.name))


def _result(name: str, passed: bool, seconds: float, import_seconds: float | None, timed_out: bool,
            timeout: int, lines) -> CheckResult:
    detail = error = ""
    if timed_out:
        detail = f"timed out after {timeout} s"
    elif not passed:
        lines = list(lines)
        detail, error = "\n".join(last_lines(lines, 8)), exception_of(lines)
    return CheckResult(name, passed, round(seconds, 3),
                       round(import_seconds, 3) if import_seconds is not None else None, detail, error)


def failure_message(r: CheckResult) -> str:
    """"smoke check failed: import nltk: LookupError: Resource punkt_tab not found." """
    return f"smoke check failed: {r.name}" + (f": {r.error}" if r.error else "")


MAX_LINE = 300  # characters of one output line shown
MAX_SHOWN = 2048  # characters of a failure's output shown in all; the log holds the whole
_EXCEPTION = re.compile(r"([A-Za-z_][\w.]*[A-Z]\w*)(?::\s?(.*))?")  # ValueError: x / pkg.errors.Bad: x


def _has_words(line: str) -> bool:
    """Not a banner: nltk frames its messages in lines of asterisks."""
    return re.search(r"\w", line) is not None


def last_lines(lines: list[str], n: int) -> list[str]:
    """The last n lines worth showing (banners skipped), each cut to MAX_LINE, MAX_SHOWN in all."""
    out: list[str] = []
    for line in reversed([x for x in lines if _has_words(x)][-n:]):
        line = line if len(line) <= MAX_LINE else line[:MAX_LINE] + "..."
        if sum(map(len, out)) + len(line) > MAX_SHOWN:
            break
        out.insert(0, line)
    return out


def exception_of(lines: list[str]) -> str:
    """The exception a Python traceback ends in, with its message; a message that starts on the
    next lines (nltk's LookupError, inside a banner) is taken from its first line of words."""
    found, in_traceback = "", False
    for i, line in enumerate(lines):
        if "Traceback (most recent call last)" in line:  # stderr may land inside a line of stdout
            in_traceback = True
        elif in_traceback and (m := _EXCEPTION.fullmatch(line.rstrip())):
            message = (m.group(2) or "").strip() or next((x.strip() for x in lines[i + 1:] if _has_words(x)), "")
            found, in_traceback = f"{m.group(1)}: {message}" if message else m.group(1), False
    return found[:MAX_LINE]


def _harness(checks: list[tuple[str, dict]], env_python: str, env: dict, cwd: str, timeout: int, log,
             on_result, cancel: threading.Event) -> list[CheckResult]:
    """Run the checks under one interpreter. A check that kills its interpreter or passes its time
    limit fails; a fresh interpreter then goes on with the rest."""
    results: list[CheckResult] = []
    todo = list(enumerate(checks))
    script = Path(cwd) / "nlpsetup_smoke_harness.py"
    script.write_text(harness_text(), encoding="utf-8")
    while todo and not cancel.is_set():
        nonce = uuid.uuid4().hex
        spec = Path(cwd) / f"checks-{nonce}.json"
        spec.write_text(json.dumps([[i, c] for i, (_, c) in todo]), encoding="utf-8")
        # since: when the running check (or the wait for the commands) began; each is held to `timeout`
        state = {"since": time.monotonic(), "lines": [], "current": None}
        finished: set[int] = set()
        marker = f"NLPSETUP-{nonce} "

        def on_line(line: str, state=state, marker=marker, finished=finished) -> None:
            if not line.startswith(marker):
                state["lines"].append(line)
                return
            what, data = line[len(marker):].split(" ", 1)
            data = json.loads(data)
            if what in ("start", "wait"):
                state.update(since=time.monotonic(), lines=[], current=data.get("i"))
            if what in ("start", "show") and log is not None:
                log.write(f"## smoke: {checks[data['i']][0]}\n")
            if what == "show":
                state["lines"] = []
            if what != "end":
                return
            name, check = checks[data["i"]]
            r = _result(name, data["passed"], data["seconds"],
                        data["seconds"] if check["kind"] == "imports" else None, data.get("timed_out", False),
                        timeout, [data["why"]] if data["why"] else state["lines"])
            results.append(r)
            finished.add(data["i"])
            if on_result:
                on_result(r)

        def past_limit(state=state) -> bool:
            return cancel.is_set() or time.monotonic() - state["since"] > timeout

        if log is not None:
            log.write(f"\n## smoke: {' ; '.join(checks[i][0] for i, _ in todo)} (one interpreter)\n")
        r = proc.run([env_python, "-I", str(script), nonce, str(spec)], env=env, log=log, on_line=on_line,
                     cwd=cwd, watch=past_limit, sweep=True)
        todo = [(i, c) for i, c in todo if i not in finished]
        if not todo or cancel.is_set():
            break
        # The interpreter ended inside a check (it fails, the rest go on in a fresh one), or while
        # it awaited the commands (they fail with it).
        blamed = [i for i, _ in todo if i == state["current"]] or [i for i, _ in todo]
        lines = state["lines"] if state["current"] is not None else list(r.tail)
        why = f"the interpreter exited with code {r.returncode}" if not r.timed_out else ""
        for i in blamed:
            res = _result(checks[i][0], False, time.monotonic() - state["since"], None, r.timed_out, timeout,
                          [*lines, why] if why else lines)
            results.append(res)
            if on_result:
                on_result(res)
        todo = [(i, c) for i, c in todo if i not in blamed]
    return results
