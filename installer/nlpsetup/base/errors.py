"""The one user-facing error type: a message, a hint saying what to do, and an exit code.

Anything else that escapes is a bug and keeps its traceback under --debug.
"""

from __future__ import annotations

import errno

# Exit codes are a contract (issue: plan/install): scripts and CI read them.
EXIT_OK = 0
EXIT_FAILED = 1  # an operation or a check failed
EXIT_USAGE = 2  # bad usage or bad input (unknown tool, broken recipe, bad argument)
EXIT_REFUSED = 3  # the host cannot satisfy the request
EXIT_INTERRUPTED = 130


class NlpsetupError(Exception):
    """An error the user can act on. `str()` is the one-line message; `hint` is the next step."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class RecipeError(NlpsetupError):
    """A recipe file is invalid. Carries every problem found in the file, not only the first."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = list(problems)
        first = problems[0] if problems else "invalid"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"{path}: {first}{more}",
            hint=f"fix the recipe, then check it with: nlpsetup recipe check {path}",
        )


def from_os_error(exc: OSError, home=None) -> NlpsetupError:
    """An OSError that reached the command line: nlpsetup's own write met a full disk or a
    read-only folder. One line naming the path, exit 1. What was there stays: every file nlpsetup
    keeps is replaced atomically, and an env renamed aside is renamed back."""
    where = exc.filename or (f"under {home}" if home else "a file nlpsetup writes")  # a failed flush has no name
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        verb, hint = "write", "free some space on that disk (or point NLPSETUP_HOME at a larger one), then run it again"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        verb, hint = "write", "make it writable (or point NLPSETUP_HOME at a folder that is), then run it again"
    else:
        verb, hint = "use", "check that path, then run the command again"
    return NlpsetupError(f"cannot {verb} {where}: {exc.strerror or exc}", hint=hint, exit_code=EXIT_FAILED)
