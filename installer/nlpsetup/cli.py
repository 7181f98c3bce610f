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
from nlpsetup.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, NlpsetupError

_JSON = "nlpsetup.json"  # ctx.meta key: this command prints JSON, so errors must too


def _echo_json(data) -> None:
    from nlpsetup.redact import mask_text

    # Values are masked where they are made; this pass catches anything that slipped through.
    click.echo(mask_text(json.dumps(data, indent=2, sort_keys=False)))


def _error_doc(message: str, hint: str | None, code: int) -> dict:
    return {"error": {"message": message, "hint": hint, "exit_code": code}}


def _fail(ctx: click.Context, exc: NlpsetupError) -> None:
    from nlpsetup import render
    from nlpsetup.resolve import Refused

    refusal = exc.refusal if isinstance(exc, Refused) else None
    if ctx.meta.get(_JSON):
        _echo_json({**(refusal.to_dict() if refusal else {}), **_error_doc(exc.message, exc.hint, exc.exit_code)})
    elif refusal is not None:
        click.echo("\n".join(x for x in (exc.note, render.refusal_text(refusal)) if x), err=True)
    else:
        click.secho(f"nlpsetup: error: {exc.message}", err=True, fg="red", color=False if os.environ.get("NO_COLOR") else None)
        if exc.hint:
            click.echo(f"  {exc.hint}", err=True)
    ctx.exit(exc.exit_code)


class _Group(click.Group):
    """Maps the user-facing error type to its message and exit code, in one place."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NlpsetupError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            _fail(ctx, exc)
        except KeyboardInterrupt:
            click.echo("nlpsetup: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


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
        from nlpsetup.envstore import recover_interrupted

        for r in recover_interrupted(_home()):
            click.echo(f"nlpsetup: env {r.env}: {r.action}", err=True)


def _enter_ci_mode() -> None:
    """No spinners, no colour, nothing interactive: what CI runners need."""
    os.environ.setdefault("CI", "true")
    os.environ["NO_COLOR"] = "1"


def _home(checked: bool = False):
    from nlpsetup import paths

    return paths.checked_home() if checked else paths.home()


def _book(report: bool = True):
    """Every recipe; a broken one is reported (one line) and skipped, never fatal to the others."""
    from nlpsetup import paths, recipes

    book = recipes.load_book(paths.recipe_dirs())
    for line in book.warnings() if report else ():
        click.echo(line, err=True)
    return book


def _host(platform=None, arch=None, host_file=None):
    from nlpsetup import host

    return host.load(_home(), os_name=platform, arch=arch, host_file=host_file)


def _plan_options(f):
    options = [
        click.option("--variant", help="Use this variant (see `nlpsetup show TOOL`)."),
        click.option("--python", "python", help="A Python request: 3.8, cp39, python3.12, >=3.10 or a path."),
        click.option("--compute", default="auto", show_default=True, help="auto, cpu or a CUDA build such as cu126."),
        click.option("--via", type=click.Choice(["pip", "conda"]), default="pip", show_default=True),
        click.option("--platform", type=click.Choice(["linux", "macos", "windows"]), help="Resolve for another OS (simulated)."),
        click.option("--arch", type=click.Choice(["x86_64", "arm64"]), help="Resolve for another CPU architecture (simulated)."),
        click.option("--host-file", type=click.Path(dir_okay=False), help="Resolve for the host described in this JSON file."),
        click.option("--name", "env_name", help="Env name (default: the tool's name)."),
        click.option("--fetch-python", is_flag=True, help="Let uv download a missing Python."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def _choices(variant, python, compute, via, env_name, fetch_python):
    from nlpsetup.planning import Choices

    return Choices(variant, python, compute, via, env_name, fetch_python)


# --- commands -------------------------------------------------------------------------------


@cli.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Every recipe, and whether this host can have it."""
    from nlpsetup import listcache, paths, render

    value = listcache.rows(_home(), paths.recipe_dirs(), lambda: _list_rows())
    for warning in value["warnings"]:
        click.echo(warning, err=True)
    _echo_json(value["rows"]) if as_json else click.echo(render.list_text(value["rows"]))


def _list_rows() -> dict:
    from nlpsetup import planning

    book = _book(report=False)  # list prints the warnings itself, also when served from its cache
    return {"rows": planning.availability(book, _host(), _home()), "warnings": book.warnings()}


@cli.command()
@click.argument("tool")
@json_option
def show(tool: str, as_json: bool) -> None:
    """A recipe, variant by variant: Pythons, platforms, pins and why, smoke checks."""
    from nlpsetup import render

    recipe = _book().get(tool)
    _echo_json(render.recipe_dict(recipe)) if as_json else click.echo(render.show_text(recipe))


@cli.command()
@click.argument("tool")
@_plan_options
@json_option
def plan(tool, variant, python, compute, via, platform, arch, host_file, env_name, fetch_python, as_json):
    """Decide which environment TOOL gets on this host, without installing anything.

    Exit 0 with a plan, 3 when the host cannot have TOOL, 2 for bad input."""
    from nlpsetup import planning, render

    book = _book()
    host = _host(platform, arch, host_file)
    p = planning.plan_one(book, tool, host, _choices(variant, python, compute, via, env_name, fetch_python), _home())
    _echo_json(p.to_dict()) if as_json else click.echo(render.plan_text(p))


@cli.command()
@click.argument("tools", nargs=-1)
@_plan_options
@click.option("--backend", type=click.Choice(["auto", "pip", "uv"]), default="auto", show_default=True,
              help="Installer: uv when found (auto), or pip.")
@click.option("--force", is_flag=True, help="Rebuild the env even if it is installed (the old one is kept until the new one works).")
@click.option("--keep-failed", is_flag=True, help="Keep a failed env for inspection instead of removing it.")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option("--step-timeout", type=click.IntRange(1, 6 * 3600), help="Time limit of each step, in seconds.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another nlpsetup is changing this env.")
@click.option("--from-lock", "from_lock", type=click.Path(dir_okay=False), help="Rebuild an env from a lock file.")
@json_option
@click.option("-v", "--verbose", is_flag=True, help="Stream each step's output.")
@click.option("--ci", "ci_mode", is_flag=True, help="CI mode (also on when CI is set).")
@click.pass_context
def install(ctx, tools, variant, python, compute, via, platform, arch, host_file, env_name, fetch_python,
            backend, force, keep_failed, dry_run, step_timeout, no_wait, from_lock, as_json, verbose, ci_mode):
    """Build, verify and record an env for TOOL (several tools share one env when their Pythons agree).

    Exit 0 when every smoke check passed, 1 when a step or check failed (nothing is lost: a failed
    reinstall puts the old env back), 2 for bad input, 3 when the host cannot have TOOL, 130 on Ctrl-C."""
    from nlpsetup import execute, planning, progress, render

    if platform or arch or host_file:
        raise NlpsetupError("install builds on this machine: --platform, --arch and --host-file are for plan",
                            hint="use: nlpsetup plan TOOL --platform ...")
    root, host = _home(checked=True), _host()
    if from_lock:
        plans = [planning.plan_from_lock(from_lock, env_name, host, root)]
    else:
        choices = _choices(variant, python, compute, via, env_name, fetch_python)
        plans = planning.plan_tools(_book(), list(tools), host, choices, root)
    if dry_run:
        _echo_json([p.to_dict() for p in plans]) if as_json else click.echo("\n\n".join(map(render.plan_text, plans)))
        return
    if ci_mode:
        _enter_ci_mode()
    reporter = progress.reporter_for(os.environ, quiet=as_json, verbose=verbose)
    if not as_json:
        click.echo(render.install_start(plans), err=True)
    opts = execute.Options(backend=backend, force=force, keep_failed=keep_failed, step_timeout=step_timeout,
                           wait=not no_wait, verbose=verbose)
    outcome = execute.install(plans, host, root, opts, reporter)
    if isinstance(reporter, progress.GithubReporter) and (line := progress.github_finish(outcome, os.environ)):
        click.echo(line)
    if as_json:
        error = {} if outcome.ok else _error_doc(outcome.message, outcome.diagnosis, EXIT_FAILED)
        _echo_json({**outcome.to_dict(), **error})
    else:
        click.echo(render.outcome_text(outcome), err=not outcome.ok)
    ctx.exit(EXIT_OK if outcome.ok else EXIT_FAILED)


def _store():
    from nlpsetup.envstore import EnvStore

    return EnvStore(_home(checked=True))


@cli.command()
@click.argument("envs", nargs=-1)
@json_option
@click.pass_context
def verify(ctx, envs, as_json):
    """Run each env's smoke checks again and report drift since it was installed."""
    from nlpsetup import envinfo, progress, render

    reporter = progress.TermReporter()
    results = envinfo.verify_envs(_store(), list(envs), on_start=None if as_json else lambda n: click.echo(f"{n}:", err=True),
                                  on_result=None if as_json else reporter.smoke_result)
    if as_json:
        _echo_json(results)
    else:
        for line, diagnostic in render.verify_lines(results):
            click.echo(line, err=diagnostic)
    ctx.exit(EXIT_OK if all(r["ok"] for r in results) else EXIT_FAILED)


@cli.command()
@json_option
def envs(as_json):
    """The envs nlpsetup manages, with tool, Python, status and size."""
    from nlpsetup import envinfo, render

    rows = envinfo.statuses(_store())
    _echo_json(rows) if as_json else click.echo(render.envs_text(rows))


@cli.command()
@click.argument("env")
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


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("env")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@click.pass_context
def run(ctx, env, command):
    """Run COMMAND with ENV active (PATH and VIRTUAL_ENV set). nlpsetup becomes the command, so
    signals reach it and its exit status is yours (128+N when a signal N killed it).

    Example: nlpsetup run sp -- python -c "import spacy"."""
    import shutil

    from nlpsetup import proc, smoke
    from nlpsetup.env import Env

    command = command[1:] if command and command[0] == "--" else command
    if not command:
        raise NlpsetupError("name a command to run", hint=f"for example: nlpsetup run {env} -- python")
    path = _store().existing(env)
    environ = smoke.environ_for(path)
    exe = shutil.which(command[0], path=environ["PATH"])
    if exe is None:
        raise NlpsetupError(f"{command[0]}: command not found in env {env} or on PATH",
                            hint=f"see what the env has: ls {Env.at(path).bin_dir}")
    ctx.exit(proc.replace_process([exe, *command[1:]], environ))


@cli.command()
@click.argument("env")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the lock here (default: stdout).")
def lock(env, output):
    """The env's exact pins, with the interpreter and platform it was built for."""
    from pathlib import Path

    from nlpsetup import lockfile
    from nlpsetup.files import write_json_atomic

    data = lockfile.of_env(_store().existing(env))
    if not output:
        return _echo_json(data)
    write_json_atomic(Path(output), data)
    click.echo(f"wrote {output} ({len(data['distributions'])} distributions, Python {data['python']['version']})")


@cli.command()
@click.argument("tool", required=False)
@json_option
@click.option("--quick", is_flag=True, help="Skip the slow checks (index probe, smoke checks, pip check).")
@click.option("--fix", "do_fix", is_flag=True, help="Recover interrupted installs and remove half-built envs.")
@click.option("--report", type=click.Path(dir_okay=False), help="Write a Markdown report, ready to paste into an issue.")
@click.pass_context
def doctor(ctx, tool, as_json, quick, do_fix, report):
    """Diagnose the host and every env (or, with TOOL, each constraint of its recipe).

    Exit 0 with no failure (warnings allowed), 1 with at least one."""
    from pathlib import Path

    from nlpsetup import diagnose, doctor, render
    from nlpsetup.redact import mask_env

    host = _host()
    result = doctor.run(_book(), host, None if tool else _home(checked=True), tool=tool, quick=quick, do_fix=do_fix)
    for line in result.fixed:
        click.echo(line if "not changed" in line else f"fixed: {line}", err=True)
    if report:
        Path(report).write_text(render.doctor_markdown(host.to_dict(), result.groups, mask_env(doctor.report_env(os.environ)),
                                                       diagnose.last_failure(_home() / "logs"), __version__))
        click.echo(f"wrote {report}", err=True)
    _echo_json(result.to_dict()) if as_json else click.echo(render.doctor_summary(result))
    ctx.exit(EXIT_FAILED if result.failed else EXIT_OK)


def _matrix(tools, python, platform, compute, runner):
    from nlpsetup import matrix as mx

    pythons, platforms, runners = mx.parse_options(python, platform, runner)
    return mx.build(_book().pick(tools), pythons, platforms, compute=compute, runners=runners)


@cli.command()
@click.argument("tools", nargs=-1)
@click.option("--python", default="supported", show_default=True, help="Comma-separated versions, or 'supported'.")
@click.option("--platform", default="linux", show_default=True, help="Comma-separated: linux, macos, windows.")
@click.option("--compute", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["github", "gitlab", "json"]), default="json", show_default=True)
@click.option("--runner", multiple=True, help="Runner label for a platform, e.g. linux=ubuntu-22.04.")
def matrix(tools, python, platform, compute, fmt, runner):
    """Every (tool, python, platform) cell the recipes allow, with the variant each resolves to.

    Refused cells are listed with their reasons (stderr for github and gitlab, `excluded` in json)."""
    from nlpsetup import matrix as mx

    m = _matrix(tools, python, platform, compute, runner)
    if fmt == "json":
        return _echo_json(m.to_dict())
    click.echo(mx.github(m) if fmt == "github" else mx.gitlab(m), nl=fmt == "github")
    for x in m.excluded:
        click.echo(f"excluded {x['tool']} python {x['python']} {x['platform']}: {'; '.join(x['reasons'])}", err=True)


@cli.group()
def ci() -> None:
    """CI workflows made from the recipes."""


@ci.command("init")
@click.argument("tools", nargs=-1)
@click.option("--provider", type=click.Choice(["github", "gitlab"]), default="github", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Where to write (default: the provider's usual path).")
@click.option("--python", default="supported", show_default=True)
@click.option("--platform", default="linux", show_default=True)
@click.option("--install-spec", default="nlpsetup[uv]", show_default=True, help="What the workflow pip-installs.")
@click.option("--force", is_flag=True, help="Overwrite an existing file that differs.")
def ci_init(tools, provider, output, python, platform, install_spec, force):
    """Write a workflow: a job computes the matrix with nlpsetup, a matrix job installs each cell."""
    from nlpsetup import ciworkflow
    from nlpsetup import matrix as mx

    m = _matrix(tools, python, platform if provider == "github" else "linux", "cpu", ())
    path, text = ciworkflow.workflow_file(provider, output, tools, python, platform, install_spec,
                                          mx.gitlab(m) if provider == "gitlab" else "")
    click.echo(ciworkflow.write(path, text, force=force, cells=len(m.include)))


@cli.command("host")
@json_option
def host_cmd(as_json: bool) -> None:
    """The facts nlpsetup detected about this machine."""
    from nlpsetup import render

    h = _host()
    _echo_json(h.to_dict()) if as_json else click.echo(render.host_text(h))


@cli.group()
def recipe() -> None:
    """Work with recipe files."""


@recipe.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
@click.pass_context
def recipe_check(ctx, files, as_json) -> None:
    """Validate recipe files: exit 0 when all are valid, 2 otherwise, with every problem listed."""
    from nlpsetup import recipes, render

    results = recipes.check_files(files)
    bad = any(isinstance(r, Exception) for _, r in results)
    if as_json:
        _echo_json([{"file": f, "ok": not isinstance(r, Exception),
                     "problems": list(r.problems) if isinstance(r, Exception) else []} for f, r in results])
    else:
        for line, is_error in render.recipe_check_lines(results):
            click.echo(line, err=is_error)
    ctx.exit(EXIT_USAGE if bad else EXIT_OK)


@recipe.command("schema")
def recipe_schema() -> None:
    """The JSON Schema of recipe files (editors use it to complete and check keys)."""
    from nlpsetup import recipes

    click.echo(json.dumps(recipes.json_schema(), indent=2))


@recipe.command("test")
@click.argument("targets", nargs=-1)
@click.option("--all", "all_recipes", is_flag=True, help="Test every recipe.")
@click.option("--all-variants", is_flag=True, help="Test every variant, not only the one this host picks.")
@click.option("--variant-only", "variant_only", help="Test this variant only.")
@click.option("--python", "pythons", help="Comma-separated Python versions, or 'all' for every one on this machine.")
@click.option("--backend", type=click.Choice(["auto", "pip", "uv"]), default="auto", show_default=True)
@click.option("--plan-only", is_flag=True, help="Record what would be built, without building.")
@click.option("--record", type=click.Path(dir_okay=False), help="Merge the results into this JSON file.")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Write the whole record as a Markdown table.")
@json_option
@click.pass_context
def recipe_test(ctx, targets, all_recipes, all_variants, variant_only, pythons, backend, plan_only, record, markdown,
                as_json):
    """Build each variant's env in a temporary home, run its smoke checks, record the result and
    remove the env. TARGETS are tool names or recipe files."""
    from nlpsetup import progress, recipes, recipetest, render

    if not (all_recipes or targets):
        raise NlpsetupError("name a tool or a recipe file, or pass --all", hint="for example: nlpsetup recipe test spacy")
    chosen = recipes.targets(_book(), [] if all_recipes else list(targets))
    host = _host()
    reporter = progress.QuietReporter() if as_json else progress.TermReporter()
    rows = []
    for r in chosen:
        if not as_json:
            click.echo(f"== {r.name}", err=True)
        rows += recipetest.run(r, host, all_variants=all_variants, pythons=recipetest.python_list(pythons, host),
                               backend=backend, reporter=reporter, keep_logs=_home(checked=True) / "logs",
                               build=not plan_only, only=variant_only)
    recipetest.record(rows, record, markdown)
    _echo_json(rows) if as_json else click.echo(render.recipe_test_text(rows))
    ctx.exit(EXIT_FAILED if any(r["result"] == "fail" for r in rows) else EXIT_OK)


@recipe.command("outdated")
@click.argument("tools", nargs=-1)
@click.option("--index-url", help="Index to ask (default: pip's configured index, else PyPI).")
@json_option
@click.pass_context
def recipe_outdated(ctx, tools, index_url, as_json):
    """Releases on the index newer than each recipe knows, with their real requirements.

    Exit 1 when a package could not be checked (the index did not answer, or has no such project)."""
    from nlpsetup import outdated, render

    rows = outdated.check_all(_book().pick(tools), index_url)
    _echo_json(rows) if as_json else click.echo(render.outdated_text(rows))
    ctx.exit(EXIT_FAILED if any("error" in r for r in rows) else EXIT_OK)


def main() -> None:
    args = sys.argv[1:]
    as_json = "--json" in (args[:args.index("--")] if "--" in args else args)
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
    except KeyboardInterrupt:  # interrupted before click took over
        click.echo("nlpsetup: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
