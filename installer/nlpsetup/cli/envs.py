"""The commands about a tool's env, from recipe to removal: `list`, `show`, `plan`, `install`,
`reinstall`, `verify`, `envs`, `remove` and `run`. Options in, one core call, a result value out,
rendered by `render`; errors reach the user through main's one error contract."""

from __future__ import annotations

import os
import sys

import click

from nlpsetup.base.errors import EXIT_FAILED, EXIT_OK, NlpsetupError
from nlpsetup.cli import change, completion, discover
from nlpsetup.cli.context import echo_json, enter_ci_mode, error_doc, with_context
from nlpsetup.cli.options import (
    backend_option,
    env_argument,
    json_option,
    no_wait_option,
    plan_options,
    quiet_option,
    search_limits,
    simulate_options,
)


@click.command("list")
@json_option
@with_context
def list_cmd(app, as_json: bool) -> None:
    """Every recipe, and whether this host can have it."""
    from nlpsetup.base import paths
    from nlpsetup.cli import listcache
    from nlpsetup.ui import render

    value = listcache.rows(app.home(), paths.recipe_dirs(), lambda: _list_rows(app))
    for warning in value["warnings"]:
        click.echo(warning, err=True)
    echo_json(value["rows"]) if as_json else click.echo(render.list_text(value["rows"]))


def _list_rows(app) -> dict:
    from nlpsetup.plan import planning

    book = app.book(report=False)  # list prints the warnings itself, also when served from its cache
    return {"rows": planning.availability(book, app.host(), app.home()), "warnings": book.warnings()}


@click.command()
@click.argument("tool", shell_complete=completion.tool_names)
@json_option
@with_context
def show(app, tool: str, as_json: bool) -> None:
    """A recipe, variant by variant: Pythons, platforms, pins and why, smoke checks."""
    from nlpsetup.ui import render

    recipe = app.book().get(tool)
    echo_json(render.recipe_dict(recipe)) if as_json else click.echo(render.show_text(recipe))


@click.command()
@click.argument("tool", shell_complete=completion.tool_names)
@plan_options
@simulate_options
@backend_option
@json_option
@with_context
def plan(app, tool, platform, arch, glibc, host_file, backend, as_json, **choices):
    """Decide which environment TOOL gets on this host, without installing anything.

    Exit 0 with a plan, 3 when the host cannot have TOOL, 2 for bad input."""
    from nlpsetup.plan import planning
    from nlpsetup.ui import render

    book, host = app.book(), app.host(platform, arch, host_file, glibc)
    if discover.no_recipe(book, tool):  # a package no recipe covers: what a search would try first
        with discover.suggesting(book, tool):
            return discover.plan(tool, host, as_json, fetch_python=choices["fetch_python"])
    p = planning.with_backend([planning.plan_one(book, tool, host, planning.Choices(**choices), app.home())], backend)[0]
    echo_json(p.to_dict()) if as_json else click.echo(render.plan_text(p))


@click.command()
@click.argument("tools", nargs=-1, shell_complete=completion.tool_names)
@plan_options
@backend_option
@click.option("--no-pip", is_flag=True, help="Leave pip out of the env (uv backend only).")
@click.option("--kernel", is_flag=True, help="Also register the env as a Jupyter kernel (nlpsetup kernel ENV).")
@click.option("--force", is_flag=True, help="Rebuild the env even if it is installed (the old one is kept until the new one works).")
@click.option("--keep-failed", is_flag=True, help="Keep a failed env for inspection instead of removing it.")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option("--step-timeout", type=click.IntRange(1, 6 * 3600), help="Time limit of each step, in seconds.")
@no_wait_option
@click.option("--from-lock", "from_lock", type=click.Path(dir_okay=False), help="Rebuild an env from a lock file.")
@click.option("--from-bundle", type=click.Path(file_okay=False), help="Build an env from `nlpsetup bundle` output, offline.")
@search_limits
@json_option
@click.option("-v", "--verbose", is_flag=True, help="Stream each step's output.")
@quiet_option
@click.option("--ci", "ci_mode", is_flag=True, help="CI mode (also on when CI is set).")
@with_context
def install(app, tools, backend, no_pip, kernel, force, keep_failed, dry_run, step_timeout,
            no_wait, from_lock, from_bundle, max_attempts, time_limit, as_json, verbose, quiet, ci_mode, **choices):
    """Build, verify and record an env for TOOL (several tools share one env when their Pythons agree).

    Exit 0 when every smoke check passed, 1 when a step or check failed (nothing is lost: a failed
    reinstall puts the old env back), 2 for bad input, 3 when the host cannot have TOOL, 130 on Ctrl-C."""
    from nlpsetup.execution import execute
    from nlpsetup.plan import planning
    from nlpsetup.ui import progress, render

    root, host = app.home(checked=True), app.host()
    lock, admits = None, ()
    if from_lock or from_bundle:
        lock, find_links = planning.load_lock(from_lock, from_bundle)
        plans = [planning.plan_from_lock(lock, choices["env_name"], host, root, find_links)]
    elif len(tools) == 1 and discover.no_recipe(book := app.book(), tools[0]):  # no recipe: search for an env
        with discover.suggesting(book, tools[0]):
            if dry_run:
                return discover.plan(tools[0], host, as_json, fetch_python=choices["fetch_python"])
            return discover.install(tools[0], host, root, env_name=choices["env_name"], python=choices["python"],
                                    backend=backend, force=force, max_attempts=max_attempts,
                                    time_limit=time_limit, as_json=as_json, quiet=quiet, verbose=verbose,
                                    fetch_python=choices["fetch_python"])
    else:
        plans = planning.plan_tools(book := app.book(), list(tools), host, planning.Choices(**choices), root)
        for note in filter(None, (book.override_note(p.tool) for p in plans)):  # a user's recipe, not ours
            click.echo(note, err=True)
        if not force and os.path.isdir(plans[0].env_path):  # what an env already there may hold
            admits = planning.admitted(book, list(tools), plans, host, planning.Choices(**choices), root)
    if dry_run:
        shown = planning.with_backend(plans, backend, pip=not no_pip)
        echo_json([p.to_dict() for p in shown]) if as_json else click.echo("\n\n".join(map(render.plan_text, shown)))
        return
    if ci_mode:
        enter_ci_mode()
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
        error = {} if outcome.ok else error_doc(outcome.message, outcome.diagnosis, EXIT_FAILED)
        echo_json({**outcome.to_dict(), "warnings": warnings, **error})
    else:
        click.echo(render.outcome_text(outcome), err=not outcome.ok)
    if kernel and outcome.ok:
        return change.register_kernel(app, outcome.env, as_json, echo=not as_json, quiet=quiet)
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _with_force(env: str) -> str:
    """The command the user typed, with --name and --force: what replaces the env they named."""
    import shlex

    from nlpsetup.base.redact import mask_argv

    args = sys.argv[1:]
    named = "--name" in args or any(a.startswith("--name=") for a in args)
    return shlex.join(["nlpsetup", *mask_argv(args), *([] if named else ["--name", env]), "--force"])


@click.command()
@env_argument
@no_wait_option
@json_option
@quiet_option
@with_context
def reinstall(app, env, no_wait, as_json, quiet):
    """Rebuild ENV as it is recorded (tools, variants, Python, additions, kernel; a lock-built env
    from its lock), verified; the old env is put back if anything fails.

    The repair that doctor, verify and envs name for a broken env."""
    from nlpsetup.envs import kernels, manifest
    from nlpsetup.envs.env import Env
    from nlpsetup.execution import execute
    from nlpsetup.plan import planning
    from nlpsetup.ui import progress, render

    store = app.store()
    path = store.existing(env)
    try:
        data = manifest.read(path)
    except manifest.ManifestError as exc:
        raise NlpsetupError(f"{env} cannot be rebuilt as it was: {exc}",
                            hint=f"name its tool again: nlpsetup install TOOL --name {env} --force") from None
    root, host = store.home, app.host()
    plans = planning.rebuild(data, env, app.book(), host, root)
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
        error = {} if outcome.ok else error_doc(outcome.message, outcome.diagnosis, EXIT_FAILED)
        echo_json({**outcome.to_dict(), **error})
    else:
        click.echo(render.outcome_text(outcome), err=not outcome.ok)
    if outcome.ok and kernels.has(env, path):  # its display name names the version: written again
        return change.register_kernel(app, env, as_json, echo=not as_json, quiet=quiet)
    return EXIT_OK if outcome.ok else EXIT_FAILED


@click.command()
@click.argument("envs", nargs=-1, shell_complete=completion.env_names)
@json_option
@click.option("-q", "--quiet", is_flag=True, help="Print only failures and drift.")
@with_context
def verify(app, envs, as_json, quiet):
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

    results = envinfo.verify_envs(app.store(), list(envs), on_ready=show)
    if as_json:
        echo_json(results)
    else:
        for line, diagnostic in render.verify_lines(results):
            click.echo(line, err=diagnostic)
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_FAILED


@click.command()
@click.argument("env", required=False, shell_complete=completion.env_names)
@click.option("--outdated", is_flag=True, help="Only envs whose tools have newer releases their recipe variant allows.")
@json_option
@with_context
def envs(app, env, outdated, as_json):
    """The envs nlpsetup manages: tools and installed versions, Python, additions, kernel, last
    verify, status and size; with ENV, that env in full."""
    from nlpsetup.execution import verify as envinfo
    from nlpsetup.ui import render
    if outdated:
        return change.show_outdated(app, app.store(), as_json)
    store = app.store()
    if env is not None:
        store.existing(env)
        [row] = envinfo.statuses(store, [env])
        echo_json(row) if as_json else click.echo(render.env_text(row))
        return EXIT_OK
    rows = envinfo.statuses(store)
    echo_json(rows) if as_json else click.echo(render.envs_text(rows))


@click.command()
@env_argument
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@no_wait_option
@json_option
@with_context
def remove(app, env, yes, no_wait, as_json):
    """Delete an env and everything in it."""
    store = app.store()
    path = store.existing(env)
    if not yes:
        if as_json or not sys.stdin.isatty():
            raise NlpsetupError(f"removing {env} needs confirmation", hint=f"run: nlpsetup remove {env} --yes")
        click.confirm(f"remove env {env} at {path}?", abort=True)
    store.remove_env(env, wait=not no_wait, on_wait=lambda: click.echo(f"waiting for another nlpsetup on {env}...", err=True))
    echo_json({"removed": env, "path": str(path)}) if as_json else click.echo(f"removed {env}")
    change.forget_kernel(app, env, quiet=as_json)


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@env_argument
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@with_context
def run(app, env, command):
    """Run COMMAND with ENV active (PATH and VIRTUAL_ENV set). nlpsetup becomes the command, so
    signals reach it and its exit status is yours (128+N when a signal N killed it).

    Example: nlpsetup run sp -- python -c "import spacy"."""
    from nlpsetup.base import proc
    from nlpsetup.envs.env import Env

    argv, environ = Env.at(app.store().existing(env)).command(command[1:] if command[:1] == ("--",) else command)
    return proc.replace_process(argv, environ)

