"""The command line's group: it maps errors to their exit codes and messages in one place, knows the
aliases users bring from other tools, and registers the commands, each a plain click command in the
module of its group (envs, host, change, share, image, authors, discover).

Only the cli modules import click, print or exit; errors become one line (or, with --json, one
`{"error": ...}` document) in `_Group.invoke`, or in `main` for bad usage caught before a command
ran. Heavy modules are imported inside the commands so that start-up stays close to a bare
interpreter's.
"""

from __future__ import annotations

import os
import sys

import click

from nlpsetup import __version__
from nlpsetup.base import interrupts
from nlpsetup.base.errors import EXIT_FAILED, EXIT_OK, NlpsetupError, from_os_error
from nlpsetup.base.redact import escape_controls
from nlpsetup.cli import authors, change, discover, envs, host, image, share
from nlpsetup.cli.context import Context, echo_json, enter_ci_mode, error_doc
from nlpsetup.cli.options import JSON_META


def _fail(ctx: click.Context, exc: NlpsetupError) -> None:
    from nlpsetup.resolve.model import Refused
    from nlpsetup.ui import render

    refusal = exc.refusal if isinstance(exc, Refused) else None
    if ctx.meta.get(JSON_META):
        echo_json({**(refusal.to_dict() if refusal else {}), **error_doc(exc.message, exc.hint, exc.exit_code)})
    elif refusal is not None:
        click.echo("\n".join(x for x in (exc.note, render.refusal_text(refusal)) if x), err=True)
    else:
        from nlpsetup.base.redact import mask_text

        click.secho(f"nlpsetup: error: {escape_controls(mask_text(exc.message))}", err=True, fg="red", color=False if os.environ.get("NO_COLOR") else None)
        if exc.hint:
            click.echo(f"  {escape_controls(mask_text(exc.hint))}", err=True)
    ctx.exit(exc.exit_code)


# The words users bring from pip, brew, apt and conda, each another name for one of our commands.
ALIASES = {"uninstall": "remove", "rm": "remove", "ls": "envs", "update": "upgrade"}
# Commands that undo each other: a typo of one must never be answered with the other.
_OPPOSITES = {frozenset(("install", "remove")), frozenset(("add", "remove"))}


def suggestion(typed: str, names: list[str]) -> str | None:
    """The command a mistyped word most likely meant, as shown (`'uninstall' (remove)`), or None.

    difflib alone answers `uninstal` with `install`: so aliases count as the command they name,
    the best match decides the meaning, and candidates meaning its opposite are dropped."""
    from difflib import get_close_matches

    matches = get_close_matches(typed, [*names, *ALIASES])
    if not matches:
        return None
    meaning = ALIASES.get(matches[0], matches[0])
    best = next(m for m in matches if frozenset((meaning, ALIASES.get(m, m))) not in _OPPOSITES)
    return f"'{best}'" + (f" ({meaning})" if best != meaning else "")


class _Group(click.Group):
    """Maps the user-facing error type to its message and exit code, in one place; knows the aliases."""

    def get_command(self, ctx, cmd_name):
        return super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if not ctx.resilient_parsing and not name.startswith("-") and self.get_command(ctx, name) is None:
            near = suggestion(name, self.list_commands(ctx))
            raise click.UsageError(f"No such command {name!r}." + (f" Did you mean {near}?" if near else ""), ctx)
        return super().resolve_command(ctx, args)

    def shell_complete(self, ctx, incomplete):  # aliases stay out of --help but are completed
        from click.shell_completion import CompletionItem

        aliases = [CompletionItem(a, help=f"the same as {c}") for a, c in ALIASES.items() if a.startswith(incomplete)]
        return sorted([*super().shell_complete(ctx, incomplete), *aliases], key=lambda item: item.value)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (NlpsetupError, OSError) as exc:  # OSError: a full disk or read-only home met by our own writes
            app = ctx.find_object(Context) or Context()  # none yet: the error came before the group's callback
            if app.debug:
                raise
            _fail(ctx, exc if isinstance(exc, NlpsetupError) else from_os_error(exc, app.home()))
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (interrupts.Terminated)
            click.echo(f"nlpsetup: {interrupts.describe(exc)}", err=True)
            ctx.exit(interrupts.exit_code(exc))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nlpsetup", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--ci", "ci_mode", is_flag=True, help="CI mode (also on when CI is set): plain output, no prompts.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, ci_mode: bool) -> None:
    """Working, verified environments for NLP and MLOps libraries."""
    ctx.obj = app = Context(debug=debug)
    if ci_mode:
        enter_ci_mode()
    if ctx.invoked_subcommand != "doctor":  # doctor reports interrupted installs; --fix repairs them
        from nlpsetup.envs.store import recover_interrupted

        for r in recover_interrupted(app.home()):
            click.echo(f"nlpsetup: env {r.env}: {r.action}", err=True)


# --help lists the commands sorted by name, whatever the order here.
for _command in (
    envs.list_cmd, envs.show, envs.plan, envs.install, envs.reinstall, envs.verify, envs.envs, envs.remove, envs.run,
    host.doctor, host.host_cmd,
    authors.matrix, authors.ci, authors.recipe,  # for recipe authors and CI
    change.add, change.upgrade, change.kernel,  # changing a built env
    share.lock, share.export, share.bundle, share.completion_cmd,  # handing an env on
    image.image_cmd,
):
    cli.add_command(_command)
authors.recipe.add_command(discover.recipe_new)


def main() -> None:
    args = sys.argv[1:]
    as_json = "--json" in (args[:args.index("--")] if "--" in args else args)
    interrupts.handle_termination()
    try:
        code = cli.main(prog_name="nlpsetup", standalone_mode=False)
    except click.ClickException as exc:  # bad usage, caught by click before any command ran
        if as_json:
            echo_json(error_doc(exc.format_message(), "see: nlpsetup --help", exc.exit_code))
        else:
            exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("nlpsetup: aborted", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt as exc:  # interrupted before click took over
        click.echo(f"nlpsetup: {interrupts.describe(exc)}", err=True)
        sys.exit(interrupts.exit_code(exc))
    sys.exit(code if isinstance(code, int) else EXIT_OK)
