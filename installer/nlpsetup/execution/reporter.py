"""What a run that builds or changes an env tells whoever watches it: the Reporter protocol that
install, add and upgrade report their steps, checks and warnings to, and a reporter that shows
nothing (for callers that want the result only). Those that print live in ui/progress.py.
"""

from __future__ import annotations

from typing import Protocol

from nlpsetup.execution.smoke import CheckResult


class Reporter(Protocol):
    def waiting(self, env: str) -> None: ...
    def step_start(self, name: str, description: str) -> None: ...
    def output(self, line: str) -> None: ...
    def step_end(self, name: str, ok: bool, seconds: float, note: str = "") -> None: ...
    def smoke_result(self, result: CheckResult) -> None: ...
    def warn(self, text: str) -> None: ...


class NullReporter:
    """Shows nothing: what happened is in the result (and its log)."""

    def waiting(self, env: str) -> None:
        pass

    def step_start(self, name: str, description: str) -> None:
        pass

    def output(self, line: str) -> None:
        pass

    def step_end(self, name: str, ok: bool, seconds: float, note: str = "") -> None:
        pass

    def smoke_result(self, result: CheckResult) -> None:
        pass

    def warn(self, text: str) -> None:
        pass
