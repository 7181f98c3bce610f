"""Progress on the terminal: one line per step with its elapsed time; a live spinner on a
terminal; plain lines when output is not a terminal or CI is set; `-v` streams the output.

Download progress is a byte counter, not a parse of pip's or uv's bars (uv prints none when its
output is not a terminal, and pip's differ by version): the growth of the used space on the disk
that holds nlpsetup's home and the installers' caches, while a step that fetches runs. It is
shown as what it is, bytes written ("disk +120 MB, 8.1 MB/s"): on a terminal in the spinner's
line, elsewhere as a plain line every 30 s of a long step."""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from typing import TextIO

from nlpsetup.redact import escape_controls, mask_text
from nlpsetup.smoke import CheckResult

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_FETCHING = ("fetch-python", "pre", "framework", "install", "download")  # steps that download
PLAIN_INTERVAL = 30.0  # seconds between plain progress lines (NLPSETUP_PROGRESS_INTERVAL overrides)


class DiskMeter:
    """Bytes written to one disk since `start()`: one statvfs call per reading, whatever the cache size."""

    def __init__(self, path):
        self.path = path
        self._used0 = self._t0 = None

    def _used(self) -> int | None:
        import shutil

        try:
            return shutil.disk_usage(self.path).used
        except OSError:
            return None

    def start(self) -> None:
        self._used0, self._t0 = self._used(), time.monotonic()

    def reading(self) -> tuple[int, float] | None:
        """(bytes written so far, bytes per second), or None before anything measurable."""
        used = self._used()
        if used is None or self._used0 is None:
            return None
        grown, seconds = max(0, used - self._used0), max(time.monotonic() - self._t0, 1e-6)
        return grown, grown / seconds

    def text(self) -> str:
        r = self.reading()
        if r is None or r[0] < 1 << 20:
            return ""
        return f"disk +{r[0] / 2**20:.1f} MB, {r[1] / 2**20:.1f} MB/s"


class TermReporter:
    def __init__(self, *, verbose: bool = False, stream: TextIO | None = None, ci: bool | None = None,
                 watch=None):
        self.stream = stream or sys.stderr
        self.meter = DiskMeter(watch) if watch is not None and not verbose else None
        self.verbose = verbose
        ci = bool(os.environ.get("CI")) if ci is None else ci
        self.live = self.stream.isatty() and not ci and not verbose
        self._spin: threading.Thread | None = None
        self._stop = threading.Event()
        self._label = ""

    def _write(self, text: str) -> None:
        self.stream.write(mask_text(text))  # the one door to the terminal during an install
        self.stream.flush()

    def waiting(self, env: str) -> None:
        self._write(f"nlpsetup: env {env} is being changed by another nlpsetup; waiting for it to finish...\n")

    def step_start(self, name: str, description: str) -> None:
        self._label = escape_controls(f"{name:<10} {description}")
        metered = self.meter is not None and name in _FETCHING
        if metered:
            self.meter.start()
        if self.live:
            self._stop.clear()
            self._spin = threading.Thread(target=self._spinner, args=(metered,), daemon=True)
            self._spin.start()
        elif self.verbose:
            self._write(f"-> {self._label}\n")
        elif metered:
            self._stop.clear()
            self._spin = threading.Thread(target=self._plain_lines, args=(name,), daemon=True)
            self._spin.start()

    def _spinner(self, metered: bool = False) -> None:
        start, i, extra = time.monotonic(), 0, ""
        while not self._stop.wait(0.1):
            if metered and i % 5 == 0:  # twice a second is enough for a rate
                extra = self.meter.text()
            line = f"  {_FRAMES[i % len(_FRAMES)]} {self._label[:60]}  {time.monotonic() - start:5.1f} s"
            self._write(f"\r{line}{'  ' + extra if extra else ''}\033[K")
            i += 1

    def _plain_lines(self, name: str) -> None:
        """Not a terminal (a log, CI): a plain line now and then while a long download runs."""
        interval = float(os.environ.get("NLPSETUP_PROGRESS_INTERVAL") or PLAIN_INTERVAL)
        start = time.monotonic()
        while not self._stop.wait(interval):
            if text := self.meter.text():
                self._write(f"  ...  {name}: {text} after {time.monotonic() - start:.0f} s\n")

    def output(self, line: str) -> None:  # a line of pip's or uv's output
        self._write(f"     {escape_controls(line)}\n")

    def step_end(self, name: str, ok: bool, seconds: float, note: str = "") -> None:
        if self._spin is not None:
            self._stop.set()
            self._spin.join()
            self._spin = None
            if self.live:
                self._write("\r\033[K")
        mark = "ok  " if ok else "FAIL"
        self._write(f"  {mark} {self._label[:70]:<70} {seconds:6.1f} s{'  ' + note if note else ''}\n")

    def smoke_result(self, result: CheckResult) -> None:
        timing = f"import {result.import_seconds:.2f} s, " if result.import_seconds is not None else ""
        mark = "ok  " if result.passed else "FAIL"
        if self._spin is not None and self.live:
            self._write("\r\033[K")
        self._write(escape_controls(f"         {mark} {result.name} ({timing}{result.seconds:.1f} s)") + "\n")
        if not result.passed and result.detail:
            for line in result.detail.splitlines()[-4:]:
                self._write(f"              {escape_controls(line)}\n")

    def warn(self, text: str) -> None:
        if self._spin is not None and self.live:
            self._write("\r\033[K")
        self._write(f"nlpsetup: warning: {escape_controls(text)}\n")


class QuietReporter(TermReporter):
    """For --json: progress still goes to stderr, as plain lines."""

    def __init__(self):
        super().__init__(ci=True)


class SilentReporter(TermReporter):
    """For -q/--quiet: no progress at all; a failed step or check and warnings still show."""

    def __init__(self, stream: TextIO | None = None):
        super().__init__(stream=stream, ci=True)

    def step_start(self, name: str, description: str) -> None:
        self._label = f"{name:<10} {description}"

    def step_end(self, name: str, ok: bool, seconds: float, note: str = "") -> None:
        if not ok:
            super().step_end(name, ok, seconds, note)

    def smoke_result(self, result: CheckResult) -> None:
        if not result.passed:
            super().smoke_result(result)


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


def reporter_for(environ, *, quiet: bool, verbose: bool, silent: bool = False, watch=None):
    """Silent for -q, quiet for --json, workflow commands on GitHub Actions, else the terminal's
    (with a download meter on the disk of `watch`)."""
    if silent and not verbose:
        return SilentReporter()
    if quiet:
        return QuietReporter()
    if environ.get("GITHUB_ACTIONS") and environ.get("CI"):
        return GithubReporter()
    return TermReporter(verbose=verbose, watch=watch)
