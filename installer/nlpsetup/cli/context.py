"""What every command shares, on `ctx.obj`: a frozen `Context` that finds the home, the recipes,
the host and the env store when a command asks (each call reads them afresh, as the command's
own call did before), and the two ways a command prints a result (`echo_json`, `error_doc`).

Heavy modules are imported inside the methods: building the context costs nothing at start-up."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import click


@dataclass(frozen=True)
class Context:
    """The command line's shared state: only the --debug flag; everything else is found on demand."""

    debug: bool = False

    def home(self, checked: bool = False):
        """NLPSETUP_HOME; `checked`: made sure to be a writable folder (a clear error otherwise)."""
        from nlpsetup.base import paths

        return paths.checked_home() if checked else paths.home()

    def book(self, report: bool = True):
        """Every recipe; a broken one is reported (one line) and skipped, never fatal to the others."""
        from nlpsetup.base import paths
        from nlpsetup.recipes import load as recipes

        book = recipes.load_book(paths.recipe_dirs())
        for line in book.warnings() if report else ():
            click.echo(line, err=True)
        return book

    def host(self, platform=None, arch=None, host_file=None, glibc=None):
        """This machine's facts, or another one's where a command simulates it."""
        from nlpsetup.facts import host

        return host.load(self.home(), os_name=platform, arch=arch, host_file=host_file, glibc=glibc)

    def store(self):
        from nlpsetup.envs.store import EnvStore

        return EnvStore(self.home(checked=True))


# A command takes the context as its first argument; invoked without the group (a test), it gets a fresh one.
with_context = click.make_pass_decorator(Context, ensure=True)


def echo_json(data) -> None:
    from nlpsetup.base.redact import mask_text

    # Values are masked where they are made; this pass catches anything that slipped through.
    click.echo(mask_text(json.dumps(data, indent=2, sort_keys=False)))


def error_doc(message: str, hint: str | None, code: int) -> dict:
    """The `{"error": ...}` document a --json command prints when it fails."""
    return {"error": {"message": message, "hint": hint, "exit_code": code}}


def enter_ci_mode() -> None:
    """No spinners, no colour, nothing interactive: what CI runners need."""
    os.environ.setdefault("CI", "true")
    os.environ["NO_COLOR"] = "1"
