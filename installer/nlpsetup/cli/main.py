"""The command line: options in, one core call, a result value out, rendered by `render`.

Only this module imports click, prints or exits; errors become one line (or, with --json, one
`{"error": ...}` document) in `_Group.invoke`. Heavy modules are imported inside the commands so
that start-up stays close to a bare interpreter's.
"""

from __future__ import annotations

import json
import os
import sys

import click

from nlpsetup import __version__
from nlpsetup.base import interrupts
from nlpsetup.base.errors import EXIT_FAILED, EXIT_OK, NlpsetupError, from_os_error
from nlpsetup.base.redact import escape_controls
from nlpsetup.cli import completion

_JSON = "nlpsetup.json"  # ctx.meta key: this command prints JSON, so errors must too


def _echo_json(data) -> None:
    from nlpsetup.base.redact import mask_text

    # Values are masked where they are made; this pass catches anything that slipped through.
    click.echo(mask_text(json.dumps(data, indent=2, sort_keys=False)))


def _error_doc(message: str, hint: str | None, code: int) -> dict:
    return {"error": {"message": message, "hint": hint, "exit_code": code}}


def _fail(ctx: click.Context, exc: NlpsetupError) -> None:
    from nlpsetup.resolve.model import Refused
    from nlpsetup.ui import render

    refusal = exc.refusal if isinstance(exc, Refused) else None
    if ctx.meta.get(_JSON):
        _echo_json({**(refusal.to_dict() if refusal else {}), **_error_doc(exc.message, exc.hint, exc.exit_code)})
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
            if ctx.obj and ctx.obj.get("debug"):
                raise
            _fail(ctx, exc if isinstance(exc, NlpsetupError) else from_os_error(exc, _home()))
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (interrupts.Terminated)
            click.echo(f"nlpsetup: {interrupts.describe(exc)}", err=True)
            ctx.exit(interrupts.exit_code(exc))


def _mark_json(ctx, _param, value):
    if value:
        ctx.meta[_JSON] = True
    return value


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, callback=_mark_json, help="Print one JSON document.")(f)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nlpsetup", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--ci", "ci_mode", is_flag=True, help="CI mode (also on when CI is set): plain output, no prompts.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, ci_mode: bool) -> None:
    """Working, verified environments for NLP and MLOps libraries."""
    ctx.obj = {"debug": debug}
    if ci_mode:
        _enter_ci_mode()
    if ctx.invoked_subcommand != "doctor":  # doctor reports interrupted installs; --fix repairs them
        from nlpsetup.envs.store import recover_interrupted

        for r in recover_interrupted(_home()):
            click.echo(f"nlpsetup: env {r.env}: {r.action}", err=True)


def _enter_ci_mode() -> None:
    """No spinners, no colour, nothing interactive: what CI runners need."""
    os.environ.setdefault("CI", "true")
    os.environ["NO_COLOR"] = "1"


def _home(checked: bool = False):
    from nlpsetup.base import paths

    return paths.checked_home() if checked else paths.home()


def _book(report: bool = True):
    """Every recipe; a broken one is reported (one line) and skipped, never fatal to the others."""
    from nlpsetup.base import paths
    from nlpsetup.recipes import model as recipes

    book = recipes.load_book(paths.recipe_dirs())
    for line in book.warnings() if report else ():
        click.echo(line, err=True)
    return book


def _host(platform=None, arch=None, host_file=None, glibc=None):
    from nlpsetup.facts import host

    return host.load(_home(), os_name=platform, arch=arch, host_file=host_file, glibc=glibc)


# Linux calls arm64 aarch64: both are accepted (host.normalize_arch maps them).
ARCH_CHOICE = click.Choice(["x86_64", "arm64", "aarch64"], case_sensitive=False)


def _check_glibc(ctx, param, value: str | None) -> str | None:
    if value is not None and not (value.count(".") == 1 and all(p.isdigit() for p in value.split("."))):
        raise click.BadParameter(f"{value!r} is not a glibc version such as 2.39")
    return value


as_of_option = click.option("--as-of", "as_of", metavar="DATE|latest",
                             help="Dependencies as uploaded by the end of DATE (UTC), over the recipe's as_of; "
                                  "latest: no cutoff.")


# One vocabulary for --compute in plan, install and matrix (resolve.compute_request reads it).
COMPUTE_HELP = ("auto (this host's best build), cpu, cuda (the newest CUDA build the host can run) or one CUDA "
                "build such as cu126; a tool with no GPU build gets its CPU one, with a warning.")


def _options(*options):
    def apply(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return apply


_plan_options = _options(
    click.option("--variant", help="Use this variant (see `nlpsetup show TOOL`)."),
    click.option("--python", "python", help="A Python request: 3.8, cp39, python3.12, >=3.10 or a path."),
    click.option("--compute", default="auto", show_default=True, help=COMPUTE_HELP),
    click.option("--via", type=click.Choice(["pip", "conda"]), default="pip", show_default=True),
    click.option("--name", "env_name", help="Env name (default: the tool's name)."),
    click.option("--fetch-python", is_flag=True, help="Let uv download a missing Python."),
    as_of_option,
)
# Another machine, simulated: for plan only (install builds on this one).
_simulate_options = _options(
    click.option("--platform", type=click.Choice(["linux", "macos", "windows"]), help="Resolve for another OS (simulated)."),
    click.option("--arch", type=ARCH_CHOICE, help="Resolve for another CPU architecture (simulated; aarch64 = arm64)."),
    click.option("--glibc", callback=_check_glibc, help="Resolve for a Linux host with this glibc (simulated; default 2.39)."),
    click.option("--host-file", type=click.Path(dir_okay=False), help="Resolve for the host described in this JSON file."),
)


def search_limits(f):
    """The bounds of the search for a package no recipe covers (cli_discover)."""
    f = click.option("--time-limit", type=click.IntRange(10, 24 * 3600), default=1800, show_default=True,
                     help="A package without a recipe: stop searching after this many seconds.")(f)
    return click.option("--max-attempts", type=click.IntRange(1, 200), default=12, show_default=True,
                        help="A package without a recipe: try at most this many candidates.")(f)


_backend_option = click.option("--backend", type=click.Choice(["auto", "pip", "uv"]), default="auto",
                               show_default=True, help="Installer: uv when found (auto), or pip.")

# --- commands -------------------------------------------------------------------------------


@cli.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Every recipe, and whether this host can have it."""
    from nlpsetup.base import paths
    from nlpsetup.cli import listcache
    from nlpsetup.ui import render

    value = listcache.rows(_home(), paths.recipe_dirs(), lambda: _list_rows())
    for warning in value["warnings"]:
        click.echo(warning, err=True)
    _echo_json(value["rows"]) if as_json else click.echo(render.list_text(value["rows"]))


def _list_rows() -> dict:
    from nlpsetup.plan import planning

    book = _book(report=False)  # list prints the warnings itself, also when served from its cache
    return {"rows": planning.availability(book, _host(), _home()), "warnings": book.warnings()}


@cli.command()
@click.argument("tool", shell_complete=completion.tool_names)
@json_option
def show(tool: str, as_json: bool) -> None:
    """A recipe, variant by variant: Pythons, platforms, pins and why, smoke checks."""
    from nlpsetup.ui import render

    recipe = _book().get(tool)
    _echo_json(render.recipe_dict(recipe)) if as_json else click.echo(render.show_text(recipe))


@cli.command()
@click.argument("tool", shell_complete=completion.tool_names)
@_plan_options
@_simulate_options
@_backend_option
@json_option
def plan(tool, platform, arch, glibc, host_file, backend, as_json, **choices):
    """Decide which environment TOOL gets on this host, without installing anything.

    Exit 0 with a plan, 3 when the host cannot have TOOL, 2 for bad input."""
    from nlpsetup.plan import planning
    from nlpsetup.ui import render

    book, host = _book(), _host(platform, arch, host_file, glibc)
    if cli_discover.no_recipe(book, tool):  # a package no recipe covers: what a search would try first
        with cli_discover.suggesting(book, tool):
            return cli_discover.plan(tool, host, as_json)
    p = planning.with_backend([planning.plan_one(book, tool, host, planning.Choices(**choices), _home())], backend)[0]
    _echo_json(p.to_dict()) if as_json else click.echo(render.plan_text(p))


@cli.command()
@click.argument("tools", nargs=-1, shell_complete=completion.tool_names)
@_plan_options
@_backend_option
@click.option("--no-pip", is_flag=True, help="Leave pip out of the env (uv backend only).")
@click.option("--kernel", is_flag=True, help="Also register the env as a Jupyter kernel (nlpsetup kernel ENV).")
@click.option("--force", is_flag=True, help="Rebuild the env even if it is installed (the old one is kept until the new one works).")
@click.option("--keep-failed", is_flag=True, help="Keep a failed env for inspection instead of removing it.")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option("--step-timeout", type=click.IntRange(1, 6 * 3600), help="Time limit of each step, in seconds.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another nlpsetup is changing this env.")
@click.option("--from-lock", "from_lock", type=click.Path(dir_okay=False), help="Rebuild an env from a lock file.")
@click.option("--from-bundle", type=click.Path(file_okay=False), help="Build an env from `nlpsetup bundle` output, offline.")
@search_limits
@json_option
@click.option("-v", "--verbose", is_flag=True, help="Stream each step's output.")
@click.option("-q", "--quiet", is_flag=True, help="Print only warnings, failures and the result.")
@click.option("--ci", "ci_mode", is_flag=True, help="CI mode (also on when CI is set).")
def install(tools, backend, no_pip, kernel, force, keep_failed, dry_run, step_timeout,
            no_wait, from_lock, from_bundle, max_attempts, time_limit, as_json, verbose, quiet, ci_mode, **choices):
    """Build, verify and record an env for TOOL (several tools share one env when their Pythons agree).

    Exit 0 when every smoke check passed, 1 when a step or check failed (nothing is lost: a failed
    reinstall puts the old env back), 2 for bad input, 3 when the host cannot have TOOL, 130 on Ctrl-C."""
    from nlpsetup.execution import execute
    from nlpsetup.plan import planning
    from nlpsetup.ui import progress, render

    root, host = _home(checked=True), _host()
    lock, admits = None, ()
    if from_lock or from_bundle:
        lock, find_links = planning.load_lock(from_lock, from_bundle)
        plans = [planning.plan_from_lock(lock, choices["env_name"], host, root, find_links)]
    elif len(tools) == 1 and cli_discover.no_recipe(book := _book(), tools[0]):  # no recipe: search for an env
        with cli_discover.suggesting(book, tools[0]):
            if dry_run:
                return cli_discover.plan(tools[0], host, as_json)
            return cli_discover.install(tools[0], host, root, env_name=choices["env_name"], python=choices["python"],
                                        backend=backend, force=force, max_attempts=max_attempts,
                                        time_limit=time_limit, as_json=as_json, quiet=quiet)
    else:
        plans = planning.plan_tools(book := _book(), list(tools), host, planning.Choices(**choices), root)
        for note in filter(None, (book.override_note(p.tool) for p in plans)):  # a user's recipe, not ours
            click.echo(note, err=True)
        if not force and os.path.isdir(plans[0].env_path):  # what an env already there may hold
            admits = planning.admitted(book, list(tools), plans, host, planning.Choices(**choices), root)
    if dry_run:
        shown = planning.with_backend(plans, backend, pip=not no_pip)
        _echo_json([p.to_dict() for p in shown]) if as_json else click.echo("\n\n".join(map(render.plan_text, shown)))
        return
    if ci_mode:
        _enter_ci_mode()
    # The download meter: what the children write into the env and the installers' caches.
    watch = [plans[0].env_path, *progress.cache_dirs()]
    reporter = progress.reporter_for(os.environ, quiet=as_json, verbose=verbose, silent=quiet, watch=watch)
    if not (as_json or quiet):
        click.echo(render.install_start(plans), err=True)
    warnings = render.plan_warnings(plans)  # what --dry-run shows (no hash check, a missing tool, an EOL Python)
    for w in warnings:
        reporter.warn(w)
    opts = execute.Options(backend=backend, force=force, keep_failed=keep_failed, step_timeout=step_timeout,
                           wait=not no_wait, verbose=verbose or isinstance(reporter, progress.GithubReporter),
                           python_asked=bool(choices.get("python") or from_lock), pip=not no_pip,
                           python=choices.get("python"), admits=admits, lock=lock, retry=_with_force(plans[0].env_name))
    try:
        outcome = execute.install(plans, host, root, opts, reporter)
    finally:
        reporter.close()  # after Ctrl-C the spinner is mid-line: the error must start on a clean one
    if isinstance(reporter, progress.GithubReporter) and (line := progress.github_finish(outcome, plans, os.environ)):
        click.echo(line)
    if as_json:
        error = {} if outcome.ok else _error_doc(outcome.message, outcome.diagnosis, EXIT_FAILED)
        _echo_json({**outcome.to_dict(), "warnings": warnings, **error})
    else:
        click.echo(render.outcome_text(outcome), err=not outcome.ok)
    if kernel and outcome.ok:
        return cli_change.register_kernel(outcome.env, as_json, echo=not as_json, quiet=quiet)
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _with_force(env: str) -> str:
    """The command the user typed, with --name and --force: what replaces the env they named."""
    import shlex

    from nlpsetup.base.redact import mask_argv

    args = sys.argv[1:]
    named = "--name" in args or any(a.startswith("--name=") for a in args)
    return shlex.join(["nlpsetup", *mask_argv(args), *([] if named else ["--name", env]), "--force"])


@cli.command()
@click.argument("env", shell_complete=completion.env_names)
@click.option("--no-wait", is_flag=True, help="Fail at once if another nlpsetup is changing this env.")
@json_option
@click.option("-q", "--quiet", is_flag=True, help="Print only warnings, failures and the result.")
def reinstall(env, no_wait, as_json, quiet):
    """Rebuild ENV as it is recorded (tools, variants, Python, additions, kernel; a lock-built env
    from its lock), verified; the old env is put back if anything fails.

    The repair that doctor, verify and envs name for a broken env."""
    from nlpsetup.envs import kernels, manifest
    from nlpsetup.envs.env import Env
    from nlpsetup.execution import execute
    from nlpsetup.plan import planning
    from nlpsetup.ui import progress, render

    store = _store()
    path = store.existing(env)
    try:
        data = manifest.read(path)
    except manifest.ManifestError as exc:
        raise NlpsetupError(f"{env} cannot be rebuilt as it was: {exc}",
                            hint=f"name its tool again: nlpsetup install TOOL --name {env} --force") from None
    root, host = store.home, _host()
    plans = planning.rebuild(data, env, _book(), host, root)
    reporter = progress.reporter_for(os.environ, quiet=as_json, verbose=False, silent=quiet, watch=[path, *progress.cache_dirs()])
    if not (as_json or quiet):
        click.echo(render.install_start(plans), err=True)
    opts = execute.Options(force=True, wait=not no_wait, lock=planning.kept_lock(path),
                           pip=Env.at(path).version_of("pip") is not None)
    try:
        outcome = execute.install(plans, host, root, opts, reporter)
    finally:
        reporter.close()
    if as_json:
        error = {} if outcome.ok else _error_doc(outcome.message, outcome.diagnosis, EXIT_FAILED)
        _echo_json({**outcome.to_dict(), **error})
    else:
        click.echo(render.outcome_text(outcome), err=not outcome.ok)
    if outcome.ok and kernels.has(env, path):  # its display name names the version: written again
        return cli_change.register_kernel(env, as_json, echo=not as_json, quiet=quiet)
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _store():
    from nlpsetup.envs.store import EnvStore

    return EnvStore(_home(checked=True))


@cli.command()
@click.argument("envs", nargs=-1, shell_complete=completion.env_names)
@json_option
@click.option("-q", "--quiet", is_flag=True, help="Print only failures and drift.")
def verify(envs, as_json, quiet):
    """Run each env's smoke checks again (several envs at once) and report drift since install."""
    from nlpsetup.execution import smoke
    from nlpsetup.execution import verify as envinfo
    from nlpsetup.ui import progress, render

    reporter = progress.TermReporter()

    def show(r):  # each env's checks together, in order, as soon as they are done
        if not (as_json or (quiet and r["ok"]) or r["status"] == "skipped"):
            click.echo(f"{r['env']}:", err=True)
            for c in r["smoke"]:
                reporter.smoke_result(smoke.CheckResult(**c))

    results = envinfo.verify_envs(_store(), list(envs), on_ready=show)
    if as_json:
        _echo_json(results)
    else:
        for line, diagnostic in render.verify_lines(results):
            click.echo(line, err=diagnostic)
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_FAILED


@cli.command()
@click.argument("env", required=False, shell_complete=completion.env_names)
@click.option("--outdated", is_flag=True, help="Only envs whose tools have newer releases their recipe variant allows.")
@json_option
def envs(env, outdated, as_json):
    """The envs nlpsetup manages: tools and installed versions, Python, additions, kernel, last
    verify, status and size; with ENV, that env in full."""
    from nlpsetup.execution import verify as envinfo
    from nlpsetup.ui import render
    if outdated:
        return cli_change.show_outdated(_store(), as_json)
    store = _store()
    if env is not None:
        store.existing(env)
        [row] = envinfo.statuses(store, [env])
        _echo_json(row) if as_json else click.echo(render.env_text(row))
        return EXIT_OK
    rows = envinfo.statuses(store)
    _echo_json(rows) if as_json else click.echo(render.envs_text(rows))


@cli.command()
@click.argument("env", shell_complete=completion.env_names)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another nlpsetup is changing this env.")
@json_option
def remove(env, yes, no_wait, as_json):
    """Delete an env and everything in it."""
    store = _store()
    path = store.existing(env)
    if not yes:
        if as_json or not sys.stdin.isatty():
            raise NlpsetupError(f"removing {env} needs confirmation", hint=f"run: nlpsetup remove {env} --yes")
        click.confirm(f"remove env {env} at {path}?", abort=True)
    store.remove_env(env, wait=not no_wait, on_wait=lambda: click.echo(f"waiting for another nlpsetup on {env}...", err=True))
    _echo_json({"removed": env, "path": str(path)}) if as_json else click.echo(f"removed {env}")
    cli_change.forget_kernel(env, quiet=as_json)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("env", shell_complete=completion.env_names)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def run(env, command):
    """Run COMMAND with ENV active (PATH and VIRTUAL_ENV set). nlpsetup becomes the command, so
    signals reach it and its exit status is yours (128+N when a signal N killed it).

    Example: nlpsetup run sp -- python -c "import spacy"."""
    from nlpsetup.base import proc
    from nlpsetup.envs.env import Env

    argv, environ = Env.at(_store().existing(env)).command(command[1:] if command[:1] == ("--",) else command)
    return proc.replace_process(argv, environ)


@cli.command()
@click.argument("tool", required=False)
@json_option
@click.option("--quick", is_flag=True, help="Skip the slow checks (index probe, smoke checks, pip check).")
@click.option("--deep", is_flag=True, help="Run every env's smoke checks and pip check afresh, even if its files are unchanged.")
@click.option("--fix", "do_fix", is_flag=True, help="Recover interrupted installs and remove half-built envs.")
@click.option("--report", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write a Markdown report, ready to paste into an issue (-: to stdout).")
def doctor(tool, as_json, quick, deep, do_fix, report):
    """Diagnose the host and every env (or, with TOOL, each constraint of its recipe).

    Exit 0 with no failure (warnings allowed), 1 with at least one."""
    from pathlib import Path

    from nlpsetup.base import diagnose, paths
    from nlpsetup.base.redact import mask_env
    from nlpsetup.doctor import doctor
    from nlpsetup.ui import render

    if report == "-" and as_json:
        raise NlpsetupError("--json and --report - both write to standard output", hint="write the report to a file: --report FILE")
    host = _host()
    result = doctor.run(_book(), host, None if tool else _home(checked=True), tool=tool, quick=quick, deep=deep,
                        do_fix=do_fix)
    for line in result.fixed:
        click.echo(line if "not changed" in line else f"fixed: {line}", err=True)
    if report:
        text = render.doctor_markdown(host.to_dict(), result.groups, mask_env(doctor.report_env(os.environ)),
                                      diagnose.last_failure(paths.logs_dir(_home())), __version__)
        if report == "-":  # the report is the output; the summary goes beside it, to stderr
            click.echo(text, nl=False)
        else:
            Path(report).write_text(text, encoding="utf-8")
            click.echo(f"wrote {report}", err=True)
    _echo_json(result.to_dict()) if as_json else click.echo(render.doctor_summary(result), err=report == "-")
    return EXIT_FAILED if result.failed else EXIT_OK


@cli.command("host")
@json_option
def host_cmd(as_json: bool) -> None:
    """The facts nlpsetup detected about this machine."""
    from nlpsetup.ui import render

    h = _host()
    _echo_json(h.to_dict()) if as_json else click.echo(render.host_text(h))


# More commands, beside this module in the same shape: for recipe authors and CI (matrix, ci, recipe),
# for changing an env (add, upgrade, kernel) and for handing it on (lock, export, bundle, completion).
from nlpsetup.cli import authors as cli_authors  # noqa: E402,F401
from nlpsetup.cli import change as cli_change  # noqa: E402
from nlpsetup.cli import discover as cli_discover  # noqa: E402
from nlpsetup.cli import image as cli_image  # noqa: E402,F401
from nlpsetup.cli import share as cli_share  # noqa: E402,F401


def main() -> None:
    args = sys.argv[1:]
    as_json = "--json" in (args[:args.index("--")] if "--" in args else args)
    interrupts.handle_termination()
    try:
        code = cli.main(prog_name="nlpsetup", standalone_mode=False)
    except click.ClickException as exc:  # bad usage, caught by click before any command ran
        if as_json:
            _echo_json(_error_doc(exc.format_message(), "see: nlpsetup --help", exc.exit_code))
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
