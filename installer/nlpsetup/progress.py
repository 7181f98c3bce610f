"""Progress on the terminal: one line per step with its elapsed time; a live spinner on a
terminal; plain lines when output is not a terminal or CI is set; `-v` streams the output."""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from typing import TextIO

from nlpsetup.redact import escape_controls
from nlpsetup.smoke import CheckResult

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class TermReporter:
    def __init__(self, *, verbose: bool = False, stream: TextIO | None = None, ci: bool | None = None):
        self.stream = stream or sys.stderr
        self.verbose = verbose
        ci = bool(os.environ.get("CI")) if ci is None else ci
        self.live = self.stream.isatty() and not ci and not verbose
        self._spin: threading.Thread | None = None
        self._stop = threading.Event()
        self._label = ""

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def waiting(self, env: str) -> None:
        self._write(f"nlpsetup: env {env} is being changed by another nlpsetup; waiting for it to finish...\n")

    def step_start(self, name: str, description: str) -> None:
        self._label = escape_controls(f"{name:<10} {description}")
        if self.live:
            self._stop.clear()
            self._spin = threading.Thread(target=self._spinner, daemon=True)
            self._spin.start()
        elif self.verbose:
            self._write(f"-> {self._label}\n")

    def _spinner(self) -> None:
        start, i = time.monotonic(), 0
        while not self._stop.wait(0.1):
            self._write(f"\r  {_FRAMES[i % len(_FRAMES)]} {self._label[:70]}  {time.monotonic() - start:5.1f} s")
            i += 1

    def output(self, line: str) -> None:  # a line of pip's or uv's output
        self._write(f"     {escape_controls(line)}\n")

    def step_end(self, name: str, ok: bool, seconds: float, note: str = "") -> None:
        if self._spin is not None:
            self._stop.set()
            self._spin.join()
            self._spin = None
            self._write("\r\033[K")
        mark = "ok  " if ok else "FAIL"
        self._write(f"  {mark} {self._label[:70]:<70} {seconds:6.1f} s{'  ' + note if note else ''}\n")

    def smoke_result(self, result: CheckResult) -> None:
        timing = f"import {result.import_seconds:.2f} s, " if result.import_seconds is not None else ""
        mark = "ok  " if result.passed else "FAIL"
        if self._spin is not None:
            self._write("\r\033[K")
        self._write(escape_controls(f"         {mark} {result.name} ({timing}{result.seconds:.1f} s)") + "\n")
        if not result.passed and result.detail:
            for line in result.detail.splitlines()[-4:]:
                self._write(f"              {escape_controls(line)}\n")

    def warn(self, text: str) -> None:
        if self._spin is not None:
            self._write("\r\033[K")
        self._write(f"nlpsetup: warning: {escape_controls(text)}\n")


class QuietReporter(TermReporter):
    """For --json: progress still goes to stderr, as plain lines."""

    def __init__(self):
        super().__init__(ci=True)


class GithubReporter(TermReporter):
    """GitHub Actions: each step's output folded in its ::group::, failures as ::error annotations.

    Inside a group, workflow commands are paused (::stop-commands::) so that a line a build prints
    cannot act as a command (set outputs, add annotations) on the runner."""

    def __init__(self, stream: TextIO | None = None):
        super().__init__(stream=stream or sys.stdout, ci=True, verbose=True)
        self._token = ""

    def step_start(self, name: str, description: str) -> None:
        self._label = f"{name:<10} {description}"
        self._token = f"nlpsetup-{secrets.token_hex(8)}"
        self._write(f"::group::{name}: {description}\n::stop-commands::{self._token}\n")

    def step_end(self, name: str, ok: bool, seconds: float, note: str = "") -> None:
        self._write(f"::{self._token}::\n::endgroup::\n")
        super().step_end(name, ok, seconds, note)

    def warn(self, text: str) -> None:
        self._write(f"::warning title=nlpsetup::{_escape(text)}\n")


def _escape(text: str) -> str:
    """GitHub workflow-command data escaping (%, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_error(title: str, message: str, tail: tuple[str, ...] | list[str] = ()) -> str:
    """An ::error annotation: the message, then the last lines of the failed step's log."""
    body = escape_controls(message + ("\n" + "\n".join(tail[-ERROR_LINES:]) if tail else ""))
    return f"::error title={_escape(title).replace(':', '%3A').replace(',', '%2C')}::{_escape(body)}"


# Lines of the failed step's output an ::error annotation carries.
ERROR_LINES = 12


def github_summary(outcome, plans, environ=os.environ) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: one table row for this cell (each matrix job writes its own),
    and on failure the last lines of the log."""
    p = plans[0]
    seconds = sum(s["seconds"] for s in outcome.steps) + sum(r.seconds for r in outcome.smoke)
    runner = " ".join(x for x in (environ.get("ImageOS"), environ.get("RUNNER_OS"), environ.get("RUNNER_ARCH")) if x)
    note = outcome.message + (f" (likely cause: {outcome.diagnosis})" if outcome.diagnosis else "")
    row = [("✅" if outcome.ok else "❌"), " + ".join(x.tool for x in plans), p.variant.id, p.python.version,
           runner or "-", f"{seconds:.1f}", note]
    lines = ["| | tool | variant | Python | runner | seconds | result |", "|---|---|---|---|---|---|---|",
             "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |"]
    if not outcome.ok and outcome.tail:
        lines += ["", "<details><summary>last lines of the log</summary>", "", "~~~~",
                  *outcome.tail[-ERROR_LINES:], "~~~~", "", "</details>"]
    return "\n".join(lines) + "\n"


def github_finish(outcome, plans, environ) -> str | None:
    """On GitHub Actions: append the cell's summary row, and return the ::error line for a failure."""
    if summary := environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary, "a", encoding="utf-8") as f:
            f.write(github_summary(outcome, plans, environ))
    if outcome.ok:
        return None
    return github_error(f"nlpsetup install {outcome.env} failed",
                        outcome.message + (f" ({outcome.diagnosis})" if outcome.diagnosis else ""), outcome.tail)


def reporter_for(environ, *, quiet: bool, verbose: bool):
    """Quiet for --json, workflow commands on GitHub Actions, else the terminal's."""
    if quiet:
        return QuietReporter()
    if environ.get("GITHUB_ACTIONS") and environ.get("CI"):
        return GithubReporter()
    return TermReporter(verbose=verbose)
