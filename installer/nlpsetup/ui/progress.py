"""Progress on the terminal: one line per step with its elapsed time; a live spinner on a
terminal; plain lines when output is not a terminal or CI is set; `-v` streams the output.

Download progress is a byte counter, not a parse of pip's or uv's bars (uv prints none when its
output is not a terminal, and pip's differ by version): the growth of the folders nlpsetup's
children write to (the env being built, and the installers' caches where known), inodes counted
once, so a file uv links from its cache into the env counts once. It is shown as what it is
("+120 MB written, 8.1 MB/s"): on a terminal in the spinner's line, elsewhere as a plain line every
30 s of a long step. When the folders cannot be measured quickly enough, only the time is shown.

A live line always fits the terminal (its label is cut, never wrapped: a wrapped line is what a
carriage return cannot take back)."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from nlpsetup.base.redact import escape_controls, mask_text
from nlpsetup.envs.env import tree_bytes
from nlpsetup.execution.smoke import CheckResult

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_FETCHING = ("fetch-python", "pre", "framework", "install", "download")  # steps that download
PLAIN_INTERVAL = 30.0  # seconds between plain progress lines (NLPSETUP_PROGRESS_INTERVAL overrides)
METER_BUDGET = 0.5  # seconds one reading of the folders may take; slower, and only the time is shown
METER_EVERY = 2.0  # seconds between readings


def cache_dirs(environ=os.environ) -> list[Path]:
    """The folders pip and uv download into: their variables, else their documented defaults."""
    from platformdirs import user_cache_dir

    xdg = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    uv = environ.get("UV_CACHE_DIR") or (user_cache_dir("uv") if os.name == "nt" else xdg / "uv")
    pip = environ.get("PIP_CACHE_DIR") or user_cache_dir("pip")
    return [Path(uv), Path(pip)]


class FolderMeter:
    """Bytes nlpsetup's children wrote under some folders since `start()` (never the whole disk's
    usage, which every other program on the machine moves too). A folder too big to walk within
    METER_BUDGET (a cache of many GB) is left out; with none left, only the time is shown."""

    def __init__(self, folders):
        self.folders = [Path(f) for f in folders]
        self._base: dict[Path, int] = {}
        self._t0 = self._at = 0.0
        self._shown = ""

    def start(self) -> None:
        """Called from the thread that shows the meter: the first walk must not delay the step."""
        self._t0 = self._at = time.monotonic()
        self._shown = ""
        sizes = {f: tree_bytes([f], time.monotonic() + METER_BUDGET) for f in self.folders}
        self._base = {f: n for f, n in sizes.items() if n is not None}
        self.folders = [f for f in self.folders if f in self._base or not f.exists()]  # too big once, too big again

    def text(self) -> str:
        """'+120.0 MB written, 8.1 MB/s', or '' before 1 MB or when nothing can be measured."""
        now = time.monotonic()
        if not self._base or now - self._at < METER_EVERY:
            return self._shown
        self._at = now
        sizes = {f: tree_bytes([f], now + METER_BUDGET) for f in self._base}
        if None in sizes.values():  # grew past what can be walked in time: the elapsed time has to do
            self._base, self._shown = {}, ""
            return ""
        grown = max(0, sum(sizes.values()) - sum(self._base.values()))
        rate = grown / 2**20 / max(now - self._t0, 1e-6)
        self._shown = f"+{grown / 2**20:.1f} MB written, {rate:.1f} MB/s" if grown >= 1 << 20 else ""
        return self._shown


def fit(text: str, width: int) -> str:
    """`text` cut to `width` characters, the cut marked with an ellipsis."""
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def columns(stream: TextIO) -> int:
    """The terminal's width (COLUMNS when set), less one: writing the last column wraps on some terminals."""
    return shutil.get_terminal_size((80, 24)).columns - 1


class TermReporter:
    def __init__(self, *, verbose: bool = False, stream: TextIO | None = None, ci: bool | None = None,
                 watch=None):
        self.stream = stream or sys.stderr
        self.meter = FolderMeter(watch) if watch is not None and not verbose else None
        self.verbose = verbose
        ci = bool(os.environ.get("CI")) if ci is None else ci
        self.live = self.stream.isatty() and not ci and not verbose
        self._spin: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the spinner's redraw and other lines never interleave
        self._label = ""

    def _write(self, text: str, clear: bool = False) -> None:
        with self._lock:
            self.stream.write(("\r\033[K" if clear and self._spin is not None and self.live else "") + mask_text(text))
            self.stream.flush()

    def waiting(self, env: str) -> None:
        self._write(f"nlpsetup: env {env} is being changed by another nlpsetup; waiting for it to finish...\n")

    def step_start(self, name: str, description: str) -> None:
        self._label = escape_controls(f"{name:<10} {description}")
        metered = self.meter is not None and name in _FETCHING
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

    def spinner_line(self, frame: str, seconds: float, extra: str, width: int) -> str:
        """One live line within `width`: the meter goes first when it does not fit, then the label is cut."""
        tail = f"  {seconds:5.1f} s"
        if extra and 4 + 10 + len(tail) + 2 + len(extra) <= width:
            tail += "  " + extra
        return f"  {frame} {fit(self._label, width - 4 - len(tail))}{tail}"

    def _spinner(self, metered: bool = False) -> None:
        start, i = time.monotonic(), 0
        if metered:
            self.meter.start()
        while not self._stop.wait(0.1):
            extra = self.meter.text() if metered else ""
            line = self.spinner_line(_FRAMES[i % len(_FRAMES)], time.monotonic() - start, extra, columns(self.stream))
            with self._lock:
                if not self._stop.is_set():
                    self.stream.write(f"\r{line}\033[K")
                    self.stream.flush()
            i += 1

    def _plain_lines(self, name: str) -> None:
        """Not a terminal (a log, CI): a plain line now and then while a long download runs."""
        interval = float(os.environ.get("NLPSETUP_PROGRESS_INTERVAL") or PLAIN_INTERVAL)
        start = time.monotonic()
        self.meter.start()
        while not self._stop.wait(interval):
            if text := self.meter.text():
                self._write(f"  ...  {name}: {text} after {time.monotonic() - start:.0f} s\n")

    def output(self, line: str) -> None:  # a line of pip's or uv's output
        self._write(f"     {escape_controls(line)}\n")

    def close(self) -> None:
        """Stop the spinner and clear its line (also when a step never ended: Ctrl-C), so that what
        is printed next starts on a clean line."""
        if self._spin is not None:
            self._stop.set()
            self._spin.join()
            if self.live:
                self._write("\r\033[K")
            self._spin = None

    def step_end(self, name: str, ok: bool, seconds: float, note: str = "") -> None:
        self.close()
        mark = "ok  " if ok else "FAIL"
        tail = f" {seconds:6.1f} s{'  ' + note if note else ''}"
        width = min(70, columns(self.stream) - 7 - len(tail)) if self.live else 70
        self._write(f"  {mark} {fit(self._label, width):<{width}}{tail}\n")

    def smoke_result(self, result: CheckResult) -> None:
        timing = f"import {result.import_seconds:.2f} s, " if result.import_seconds is not None else ""
        mark = "ok  " if result.passed else "FAIL"
        self._write(escape_controls(f"         {mark} {result.name} ({timing}{result.seconds:.1f} s)") + "\n", clear=True)
        if not result.passed and result.detail:
            for line in result.detail.splitlines()[-4:]:
                self._write(f"              {escape_controls(line)}\n")

    def warn(self, text: str) -> None:
        self._write(f"nlpsetup: warning: {escape_controls(text)}\n", clear=True)


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
    (with a download meter on the folders `watch`)."""
    if silent and not verbose:
        return SilentReporter()
    if quiet:
        return QuietReporter()
    if environ.get("GITHUB_ACTIONS") and environ.get("CI"):
        return GithubReporter()
    return TermReporter(verbose=verbose, watch=watch)
