"""The command line: options in, one core call, a rendered result out, an exit code.

Only this module imports click, prints or exits. Heavy modules are imported inside the
commands so that `nlpsetup --version` stays close to a bare interpreter start.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from nlpsetup import __version__
from nlpsetup.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, NlpsetupError


def _echo_json(data) -> None:
    from nlpsetup.redact import mask_text

    # Values are masked where they are made; this pass catches anything that slipped through.
    click.echo(mask_text(json.dumps(data, indent=2, sort_keys=False)))


def _error(message: str, hint: str | None = None) -> None:
    color = None if not os.environ.get("NO_COLOR") else False
    click.secho(f"nlpsetup: error: {message}", err=True, fg="red", color=color)
    if hint:
        click.echo(f"  {hint}", err=True)


class _Group(click.Group):
    """Maps the user-facing error type to a one-line message and its exit code, in one place."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NlpsetupError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            _error(exc.message, exc.hint)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("nlpsetup: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


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
        _recover_interrupted()


def _enter_ci_mode() -> None:
    """No spinners, no colour, nothing interactive: what CI runners need."""
    os.environ.setdefault("CI", "true")
    os.environ["NO_COLOR"] = "1"


def _recover_interrupted() -> None:
    """Finish what a killed nlpsetup left half-done (its journal says what), before anything else."""
    from nlpsetup import paths

    journal = paths.home() / "journal"
    try:
        if not any(journal.iterdir()):
            return
    except OSError:
        return  # no journal folder: nothing was interrupted (the common, cheap case)
    from nlpsetup.envstore import EnvStore

    for r in EnvStore(paths.home()).recover_all():
        click.echo(f"nlpsetup: env {r.env}: {r.action}", err=True)


# --- shared context -------------------------------------------------------------------------


def _book(report: bool = True):
    """Every recipe; a broken one is reported (one line) and skipped, never fatal to the others."""
    from nlpsetup import paths, recipes

    book = recipes.load_book(paths.recipe_dirs())
    if report:
        for err in book.broken:
            click.echo(_broken_line(err), err=True)
    return book


def _broken_line(err) -> str:
    return f"nlpsetup: warning: skipped broken recipe {err.message}"


def _find(book, name: str):
    recipe = book.find(name)
    if recipe is None:
        close = book.suggest(name)
        hint = f"did you mean {' or '.join(close)}?" if close else "see the tools with: nlpsetup list"
        raise NlpsetupError(f"unknown tool {name!r}", hint=hint)
    return recipe


def _read_json(path: str, option: str, hint: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise NlpsetupError(f"{option} {path}: {exc.strerror}", hint=hint) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise NlpsetupError(f"{option} {path} is not JSON: {exc}", hint=hint) from None


def _refuse(ctx, refusal, as_json: bool):
    """Print a refusal (JSON or text) and exit 3."""
    from nlpsetup import render

    if as_json:
        _echo_json(refusal.to_dict())
    else:
        click.echo(render.refusal_text(refusal), err=True)
    ctx.exit(EXIT_REFUSED)


def _host(platform: str | None = None, arch: str | None = None, host_file: str | None = None):
    from nlpsetup import host as host_mod
    from nlpsetup import paths

    if host_file:
        data = _read_json(host_file, "--host-file", "pass a file written by: nlpsetup host --json")
        h = host_mod.Host.from_dict(data, source=f"--host-file {host_file}")
    else:
        root = paths.home()
        h = host_mod.detect(root, paths.cache_dir(root))
    return host_mod.simulate(h, os_name=platform, arch=arch)


def _plan_options(f):
    options = [
        click.option("--variant", help="Use this variant (see `nlpsetup show TOOL`)."),
        click.option("--python", "python", help="Python version (3.8) or interpreter path."),
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


def _request(tool, variant, python, compute, via, env_name, fetch_python, cache_dir=None):
    from nlpsetup import pythons, resolve

    if compute != "auto" and compute != "cpu" and not (compute.startswith("cu") and compute[2:].isdigit()):
        raise NlpsetupError(f"--compute {compute!r} is not auto, cpu or a CUDA build such as cu126",
                            hint="for example: --compute cpu")
    py_req = pythons.parse_request(python) if python else None
    py_install = pythons.probe_path(py_req.path, cache_dir) if py_req and py_req.path else None
    if env_name is not None:
        resolve.check_env_name(env_name)
    return resolve.Request(
        tool=resolve.parse_tool(tool), variant=variant, python=py_req, python_install=py_install,
        compute=compute, via=via, env_name=env_name, fetch_python=fetch_python,
        torch_mirror=os.environ.get("NLPSETUP_TORCH_INDEX_URL") or None,
    )


# --- commands -------------------------------------------------------------------------------


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json: bool) -> None:
    """Every recipe, and whether this host can have it."""
    from nlpsetup import listcache, paths

    root = paths.home()
    dirs = paths.recipe_dirs()
    cache_key = listcache.key(dirs)
    value = listcache.read(paths.cache_dir(root), cache_key)
    if value is None:
        value = _list_rows(root)
        listcache.write(paths.cache_dir(root), cache_key, value)
    for warning in value["warnings"]:
        click.echo(warning, err=True)
    rows = value["rows"]
    if as_json:
        _echo_json(rows)
        return
    width = max((len(r["name"]) for r in rows), default=10)
    for r in rows:
        state = f"ok  {r['variant']} on Python {r['python']}" if r["available"] else f"no  {r['reason']}"
        click.echo(f"{r['name']:<{width}}  {state}")


def _list_rows(root) -> dict:
    from nlpsetup import paths, resolve

    book = _book(report=False)  # list prints the warnings itself, also when served from its cache
    host = _host()
    rows = []
    for recipe in book.recipes.values():
        result = resolve.resolve(recipe, host, resolve.Request(tool=resolve.ToolRequest(recipe.name)),
                                 envs_root=paths.envs_dir(root))
        ok = isinstance(result, resolve.Plan)
        rows.append({
            "name": recipe.name,
            "available": ok,
            "variant": result.variant.id if ok else None,
            "python": result.python.version if ok else None,
            "reason": None if ok else _one_line_reason(result),
            "status": recipe.status,
            "summary": recipe.summary,
        })
    return {"rows": rows, "warnings": [_broken_line(err) for err in book.broken]}


def _one_line_reason(refusal) -> str:
    first = refusal.rejected[0].reasons[0].message if refusal.rejected and refusal.rejected[0].reasons else ""
    return f"{refusal.headline} {first}".strip()


@cli.command()
@click.argument("tool")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(tool: str, as_json: bool) -> None:
    """A recipe, variant by variant: Pythons, platforms, pins and why, smoke checks."""
    from nlpsetup import render

    book = _book()
    recipe = _find(book, tool)
    if as_json:
        _echo_json(render.recipe_dict(recipe))
    else:
        click.echo(render.show_text(recipe))


@cli.command()
@click.argument("tool")
@_plan_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plan(ctx, tool, variant, python, compute, via, platform, arch, host_file, env_name, fetch_python, as_json):
    """Decide which environment TOOL gets on this host, without installing anything.

    Exit 0 with a plan, 3 when the host cannot have TOOL, 2 for bad input."""
    from nlpsetup import paths, render, resolve

    book = _book()
    req_tool = resolve.parse_tool(tool)
    recipe = _find(book, req_tool.name)
    root = paths.home()
    request = _request(tool, variant, python, compute, via, env_name, fetch_python, paths.cache_dir(root))
    host = _host(platform, arch, host_file)
    result = resolve.resolve(recipe, host, request, envs_root=paths.envs_dir(root))
    if isinstance(result, resolve.Refusal):
        _refuse(ctx, result, as_json)
    if as_json:
        _echo_json(result.to_dict())
    else:
        click.echo(render.plan_text(result))


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
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Stream each step's output.")
@click.option("--ci", "ci_mode", is_flag=True, help="CI mode (also on when CI is set).")
@click.pass_context
def install(ctx, tools, variant, python, compute, via, platform, arch, host_file, env_name, fetch_python,
            backend, force, keep_failed, dry_run, step_timeout, no_wait, from_lock, as_json, verbose, ci_mode):
    """Build, verify and record an env for TOOL (several tools share one env when their Pythons agree).

    Exit 0 when every smoke check passed, 1 when a step or check failed (nothing is lost: a failed
    reinstall puts the old env back), 2 for bad input, 3 when the host cannot have TOOL, 130 on Ctrl-C."""
    from nlpsetup import execute, paths, progress, render

    if platform or arch or host_file:
        raise NlpsetupError("install builds on this machine: --platform, --arch and --host-file are for plan",
                            hint="use: nlpsetup plan TOOL --platform ...")
    root = paths.checked_home()
    host = _host()
    if from_lock:
        plans = [_lock_plan(ctx, from_lock, env_name, root, host, as_json)]
    else:
        if not tools:
            raise NlpsetupError("name at least one tool to install", hint="for example: nlpsetup install spacy")
        plans = _plans_for(ctx, tools, variant, python, compute, via, env_name, fetch_python, root, host, as_json)
    if dry_run:
        if as_json:
            _echo_json([p.to_dict() for p in plans] if len(plans) > 1 else plans[0].to_dict())
        else:
            click.echo("\n\n".join(render.plan_text(p) for p in plans))
        return
    if ci_mode:
        _enter_ci_mode()
    github = bool(os.environ.get("GITHUB_ACTIONS")) and bool(os.environ.get("CI"))
    if as_json:
        reporter = progress.QuietReporter()
    elif github:
        reporter = progress.GithubReporter()
    else:
        reporter = progress.TermReporter(verbose=verbose)
    p = plans[0]
    for w in p.warnings:
        reporter.warn(w)
    if not as_json:
        click.echo(f"nlpsetup: installing {' + '.join(f'{x.tool} {x.variant.id}' for x in plans)} on Python "
                   f"{p.python.version} -> {p.env_path}", err=True)
    opts = execute.Options(backend=backend, force=force, keep_failed=keep_failed, step_timeout=step_timeout,
                           wait=not no_wait, verbose=verbose)
    outcome = execute.install(plans, host, root, opts, reporter)
    if github:
        if not outcome.ok:
            click.echo(progress.github_error(f"nlpsetup install {p.tool} failed",
                                             outcome.message + (f" ({outcome.diagnosis})" if outcome.diagnosis else "")))
        if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
            with open(summary, "a", encoding="utf-8") as f:
                f.write(progress.github_summary(outcome))
    if as_json:
        _echo_json(outcome.to_dict())
    else:
        click.echo(render.outcome_text(outcome), err=not outcome.ok)
    ctx.exit(EXIT_OK if outcome.ok else EXIT_FAILED)


def _plans_for(ctx, tools, variant, python, compute, via, env_name, fetch_python, root, host, as_json):
    """One plan per tool, all on the first tool's interpreter so that they can share one env."""
    from nlpsetup import paths, resolve

    book = _book()
    cache = paths.cache_dir(root)
    plans = []
    name = env_name or (resolve.parse_tool(tools[0]).name if len(tools) == 1 else "-".join(
        resolve.parse_tool(t).name for t in tools))
    for i, tool in enumerate(tools):
        recipe = _find(book, resolve.parse_tool(tool).name)
        py = python if i == 0 or python else plans[0].python.path or plans[0].python.version
        request = _request(tool, variant if i == 0 else None, py, compute, via, env_name or name, fetch_python, cache)
        result = resolve.resolve(recipe, host, request, envs_root=paths.envs_dir(root))
        if isinstance(result, resolve.Refusal):
            if i > 0:
                click.echo(f"nlpsetup: {tools[0]} and {tool} cannot share one env: {tools[0]} needs Python "
                           f"{plans[0].python.version}.", err=True)
            _refuse(ctx, result, as_json)
        plans.append(result)
    return plans


def _lock_plan(ctx, lock_path, env_name, root, host, as_json):
    from nlpsetup import lockfile, paths, resolve

    data = _read_json(lock_path, "--from-lock", "pass a file written by: nlpsetup lock ENV -o FILE")
    lock = lockfile.check(data, f"--from-lock {lock_path}")
    if env_name:
        resolve.check_env_name(env_name)
    result = lockfile.plan(lock, host, envs_root=paths.envs_dir(root), env_name=env_name)
    if isinstance(result, resolve.Refusal):
        _refuse(ctx, result, as_json)
    return result


def _store():
    from nlpsetup import paths
    from nlpsetup.envstore import EnvStore

    return EnvStore(paths.checked_home())


def _existing_env(store, name: str):
    from nlpsetup import resolve

    resolve.check_env_name(name)
    path = store.path(name)
    if not path.is_dir():
        names = store.names()
        hint = f"envs here: {', '.join(names)}" if names else "there are no envs yet: nlpsetup install TOOL"
        raise NlpsetupError(f"no env named {name!r}", hint=hint)
    return path


@cli.command()
@click.argument("envs", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def verify(ctx, envs, as_json):
    """Run each env's smoke checks again (several envs at once) and report drift since install."""
    from nlpsetup import envinfo, progress, smoke

    store = _store()
    paths = [_existing_env(store, name) for name in (list(envs) or store.names())]
    reporter = progress.TermReporter()

    def show(r):  # each env's checks together, in order, as soon as they are done
        if not as_json:
            click.echo(f"{r['env']}:", err=True)
            for c in r["smoke"]:
                reporter.smoke_result(smoke.CheckResult(**c))

    results = smoke.in_parallel(lambda p, cancel: envinfo.verify(p, cancel=cancel), paths, on_ready=show,
                                cost=smoke.expected_seconds)
    if as_json:
        _echo_json(results)
    else:
        for r in results:
            for problem in r["problems"]:
                click.echo(f"{r['env']}: broken: {problem}", err=True)
            d = r["drift"] or {}
            if any(d.values()):
                click.echo(f"{r['env']}: drift since install: " + "; ".join(
                    f"{k} {', '.join(v)}" for k, v in d.items() if v), err=True)
            click.echo(f"{r['env']}: {'ok' if r['ok'] else 'FAILED'}")
    ctx.exit(EXIT_OK if all(r["ok"] for r in results) else EXIT_FAILED)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def envs(as_json):
    """The envs nlpsetup manages, with tool, Python, status and size."""
    from nlpsetup import envinfo

    store = _store()
    pending = set(store.pending())
    rows = [envinfo.status(store.path(n), pending=n in pending, start_python=False).to_dict() for n in store.names()]
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no envs yet: nlpsetup install TOOL")
    for r in rows:
        size = f"{r['size_bytes'] / 1e6:,.0f} MB" if r["size_bytes"] is not None else "?"
        click.echo(f"{r['name']:<20} {', '.join(r['tools']) or '-':<28} Python {r['python'] or '?':<8} "
                   f"{r['status']:<11} {size:>9}")
        for p in r["problems"]:
            click.echo(f"    {p}")


@cli.command()
@click.argument("env")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another nlpsetup is changing this env.")
def remove(env, yes, no_wait):
    """Delete an env and everything in it."""
    store = _store()
    path = _existing_env(store, env)
    if not yes:
        if not sys.stdin.isatty():
            raise NlpsetupError(f"removing {env} needs confirmation", hint=f"run: nlpsetup remove {env} --yes")
        click.confirm(f"remove env {env} at {path}?", abort=True)
    with store.lock(env, wait=not no_wait, on_wait=lambda: click.echo(f"waiting for another nlpsetup on {env}...", err=True)):
        store.recover(env)
        if path.exists():
            store.remove(env)
    click.echo(f"removed {env}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("env")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@click.pass_context
def run(ctx, env, command):
    """Run COMMAND with ENV active (PATH and VIRTUAL_ENV set); its exit code is passed through.

    Example: nlpsetup run sp -- python -c "import spacy"."""
    import shutil
    import subprocess

    from nlpsetup import smoke

    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise NlpsetupError("name a command to run", hint=f"for example: nlpsetup run {env} -- python")
    store = _store()
    path = _existing_env(store, env)
    environ = smoke.environ_for(path)
    exe = shutil.which(command[0], path=environ["PATH"])
    if exe is None:
        raise NlpsetupError(f"{command[0]}: command not found in env {env} or on PATH",
                            hint=f"see what the env has: ls {smoke.env_bin(path)}")
    try:
        code = subprocess.call([exe, *command[1:]], env=environ)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    ctx.exit(code)


@cli.command()
@click.argument("env")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the lock here (default: stdout).")
def lock(env, output):
    """The env's exact pins, with the interpreter and platform it was built for."""
    from nlpsetup import lockfile, manifest

    store = _store()
    path = _existing_env(store, env)
    try:
        data = lockfile.from_manifest(manifest.read(path))
    except manifest.ManifestError as exc:
        raise NlpsetupError(f"cannot lock {env}: {exc}", hint=f"rebuild it: nlpsetup install ... --name {env} --force") from None
    if output:
        manifest.write_json_atomic(Path(output), data)
        click.echo(f"wrote {output} ({len(data['distributions'])} distributions, Python {data['python']['version']})")
    else:
        _echo_json(data)


@cli.command()
@click.argument("tool", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--quick", is_flag=True, help="Skip the slow checks (index probe, smoke checks, pip check).")
@click.option("--deep", is_flag=True, help="Run every env's smoke checks and pip check afresh, even if its files are unchanged.")
@click.option("--fix", "do_fix", is_flag=True, help="Recover interrupted installs and remove half-built envs.")
@click.option("--report", type=click.Path(dir_okay=False), help="Write a Markdown report, ready to paste into an issue.")
@click.pass_context
def doctor(ctx, tool, as_json, quick, deep, do_fix, report):
    """Diagnose the host and every env (or, with TOOL, each constraint of its recipe).

    Exit 0 with no failure (warnings allowed), 1 with at least one."""
    import datetime as dt

    from nlpsetup import __version__, paths, render
    from nlpsetup import doctor as doc
    from nlpsetup.envstore import EnvStore
    from nlpsetup.execute import reachable
    from nlpsetup.redact import is_secret_name, mask_env

    book = _book()
    host = _host()
    if tool:
        groups = [(f"Recipe {tool}", doc.tool_checks(_find(book, tool), host))]
    else:
        root = paths.checked_home()
        store = EnvStore(root)
        biggest = max((v.size_mb or 0 for r in book.recipes.values() for v in r.variants), default=0)
        probe = None if quick else doc.probe_early(host, lambda u: reachable(u, timeout=3))
        env_findings = doc.env_checks(store, quick=quick, deep=deep)
        host_findings = doc.host_checks(host, biggest_mb=biggest, today=dt.date.today(), versions=_tool_versions(host),
                                        probe_index=probe)
        groups = [("Host", host_findings), ("Envs", env_findings)]
        if do_fix:
            for line in doc.fix(store, env_findings):
                click.echo(f"fixed: {line}" if not line.split(": ", 1)[-1].startswith("not changed") else line, err=True)
            groups[1] = ("Envs", doc.env_checks(store, quick=quick, deep=deep))
    findings = [f for _, fs in groups for f in fs]
    if report:
        relevant = {k: v for k, v in os.environ.items()
                    if k.startswith(("PIP_", "UV_", "NLPSETUP_", "CUDA", "HF_", "CONDA", "VIRTUAL_ENV", "PYTHON"))
                    or k.upper().endswith("_PROXY") or is_secret_name(k)}
        Path(report).write_text(render.doctor_markdown(host.to_dict(), groups, mask_env(relevant),
                                                       _last_failure(paths.home()), __version__))
        click.echo(f"wrote {report}", err=True)
    if as_json:
        _echo_json({"schema_version": doc.SCHEMA_VERSION, "summary": doc.summary(findings),
                    "checks": [f.to_dict() for f in findings]})
    else:
        click.echo(render.doctor_text(groups))
        s = doc.summary(findings)
        click.echo(f"{s['ok']} ok, {s['warning']} warning(s), {s['failure']} failure(s)")
    ctx.exit(EXIT_FAILED if any(f.status == "failure" for f in findings) else EXIT_OK)


def _tool_versions(host) -> dict:
    from importlib import metadata

    from nlpsetup import backends, proc

    out = {}
    for name in ("pip", "virtualenv"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    uv = backends.find_uv()
    words = proc.capture([uv, "--version"], env=dict(os.environ), timeout=10)[1].split() if uv else []
    out["uv"] = words[1] if len(words) > 1 else None  # "uv 0.13.9 (x86_64-unknown-linux-gnu)"
    return out


def _last_failure(root) -> dict | None:
    """The newest install log that ended in a failure or an interrupt: its plan and its tail."""
    logs = sorted((root / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True) if (root / "logs").is_dir() else []
    for log in logs[:50]:
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        if any(line.startswith(("# failed", "# interrupted")) for line in lines[-5:]):
            plan = "\n".join(ln for ln in lines if ln.startswith(("# nlpsetup", "$ ", "## ")))
            return {"log": str(log), "plan": plan, "tail": lines[-40:]}
    return None


def _split(value: str | None) -> list[str] | None:
    return [x.strip() for x in value.split(",") if x.strip()] if value else None


def _matrix(tools, python, platform, compute, runner):
    from nlpsetup import matrix as mx
    from nlpsetup.host import OSES

    book = _book()
    recipes = [_find(book, t) for t in tools] if tools else list(book.recipes.values())
    platforms = _split(platform) or ["linux"]
    for p in platforms:
        if p not in OSES:
            raise NlpsetupError(f"--platform {p!r} is not one of {', '.join(OSES)}", hint="for example: --platform linux,macos")
    pythons = None if python in (None, "supported") else _split(python)
    for v in pythons or []:
        if not all(part.isdigit() for part in v.split(".")) or len(v.split(".")) != 2:
            raise NlpsetupError(f"--python {v!r} is not a Python version such as 3.12", hint="for example: --python 3.10,3.11,3.12")
    runners = {}
    for item in runner:
        key, sep, label = item.partition("=")
        if not sep or key not in OSES or not label:
            raise NlpsetupError(f"--runner {item!r} is not PLATFORM=LABEL", hint="for example: --runner linux=ubuntu-22.04")
        runners[key] = label
    return mx.build(recipes, pythons, platforms, compute=compute, runners=runners)


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
        _echo_json(m.to_dict())
        return
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
@click.pass_context
def ci_init(ctx, tools, provider, output, python, platform, install_spec, force):
    """Write a workflow: a job computes the matrix with nlpsetup, a matrix job installs each cell."""
    import difflib

    from nlpsetup import __version__, ciworkflow
    from nlpsetup import matrix as mx

    path = Path(output or (".github/workflows/nlpsetup.yml" if provider == "github" else ".gitlab-ci.yml"))
    args = "".join(f" {t}" for t in tools) + (f" --provider {provider}" if provider != "github" else "")
    args += f" --python {python}" if python != "supported" else ""
    args += f" --platform {platform}" if platform != "linux" else ""
    args += f" --install-spec '{install_spec}'" if install_spec != "nlpsetup[uv]" else ""
    m = _matrix(tools, python, platform if provider == "github" else "linux", "cpu", ())
    text = ciworkflow.render(provider, tools=list(tools), pythons=python, platforms=platform, version=__version__,
                             install_spec=install_spec, matrix_yaml=mx.gitlab(m) if provider == "gitlab" else "",
                             args=args)
    if path.exists():
        old = path.read_text()
        if old == text:
            click.echo(f"{path} is up to date")
            return
        if not force:
            diff = difflib.unified_diff(old.splitlines(), text.splitlines(), str(path), f"{path} (new)", lineterm="")
            click.echo("\n".join(diff))
            raise NlpsetupError(f"{path} exists and differs (diff above)", hint="pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    click.echo(f"wrote {path} ({len(m.include)} cells)")


@cli.command("host")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (usable as --host-file).")
def host_cmd(as_json: bool) -> None:
    """The facts nlpsetup detected about this machine."""
    h = _host()
    data = h.to_dict()
    if as_json:
        _echo_json(data)
        return
    click.echo(f"host     {h.describe()}")
    for p in h.pythons:
        click.echo(f"python   {p.describe()}")
    g = h.gpu
    click.echo(f"gpu      driver {g.driver}, " + ", ".join(f"{x.name} (sm {x.compute_capability})" for x in g.gpus)
               if g.driver else f"gpu      none ({g.error or 'no NVIDIA driver'})")
    for name, path in h.tools:
        click.echo(f"tool     {name}: {path}")
    idx = data["index"]
    click.echo(f"index    {idx['index_url'] or 'PyPI (default)'}" + (f" + {' '.join(idx['extra_index_urls'])}" if idx["extra_index_urls"] else ""))


@cli.group()
def recipe() -> None:
    """Work with recipe files."""


@recipe.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.pass_context
def recipe_check(ctx, files) -> None:
    """Validate recipe files: exit 0 when all are valid, 2 otherwise, with every problem listed."""
    from pathlib import Path

    from nlpsetup.errors import RecipeError
    from nlpsetup.recipes import load_file

    bad = 0
    for f in files:
        try:
            r = load_file(Path(f))
        except RecipeError as exc:
            bad += 1
            for problem in exc.problems:
                click.echo(f"{exc.path}: {problem}", err=True)
            continue
        click.echo(f"{f}: ok ({r.name}, {len(r.variants)} variant(s))")
    ctx.exit(EXIT_USAGE if bad else EXIT_OK)


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
@click.option("--json", "as_json", is_flag=True, help="Print this run's rows as JSON.")
@click.pass_context
def recipe_test(ctx, targets, all_recipes, all_variants, variant_only, pythons, backend, plan_only, record, markdown,
                as_json):
    """Build each variant's env in a temporary home, run its smoke checks, record the result and
    remove the env. TARGETS are tool names or recipe files."""
    from nlpsetup import paths, progress, recipetest
    from nlpsetup.recipes import load_file

    book = _book()
    if all_recipes:
        recipes = list(book.recipes.values())
    elif targets:
        recipes = [load_file(Path(t)) if t.endswith(".toml") else _find(book, t) for t in targets]
    else:
        raise NlpsetupError("name a tool or a recipe file, or pass --all", hint="for example: nlpsetup recipe test spacy")
    host = _host()
    if pythons == "all":
        py_list = sorted({p.minor for p in host.pythons if p.version >= "3"}, key=lambda v: tuple(map(int, v.split("."))))
    else:
        py_list = [p.strip() for p in pythons.split(",")] if pythons else None
    root = paths.checked_home()
    reporter = progress.QuietReporter() if as_json else progress.TermReporter()
    rows = []
    for r in recipes:
        if not as_json:
            click.echo(f"== {r.name}", err=True)
        rows += recipetest.run(r, host, all_variants=all_variants, pythons=py_list, backend=backend,
                               reporter=reporter, keep_logs=paths.logs_dir(root), build=not plan_only,
                               only=variant_only)
    if record:
        merged = recipetest.merge(Path(record), rows)
        if markdown:
            Path(markdown).write_text(recipetest.markdown(merged))
    elif markdown:
        Path(markdown).write_text(recipetest.markdown(rows))
    if as_json:
        _echo_json(rows)
    else:
        for row in rows:
            click.echo(f"{row['tool']:<26} {row.get('variant') or '-':<14} {row.get('python') or '-':<8} "
                       f"{row['result']:<8} {row.get('detail') or ''}"[:200])
    ctx.exit(EXIT_FAILED if any(r["result"] == "fail" for r in rows) else EXIT_OK)


@recipe.command("outdated")
@click.argument("tools", nargs=-1)
@click.option("--index-url", help="Index to ask (default: pip's configured index, else PyPI).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def recipe_outdated(tools, index_url, as_json):
    """Releases on the index newer than each recipe knows, with their real requirements."""
    from nlpsetup import outdated
    from nlpsetup.host import pip_index_settings

    book = _book()
    recipes = [_find(book, t) for t in tools] if tools else list(book.recipes.values())
    index = index_url or pip_index_settings(dict(os.environ)).index_url or outdated.PYPI
    rows = [row for r in recipes for row in outdated.check(r, index)]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        if "error" in row:
            click.echo(f"{row['tool']:<26} {row['package']:<24} cannot check: {row['error']}")
        elif row["covered"]:
            click.echo(f"{row['tool']:<26} {row['package']:<24} up to date ({row['newest']})")
        else:
            click.echo(f"{row['tool']:<26} {row['package']:<24} {row['newest']} is newer than the recipe knows "
                       f"({row['newest_known']}); Requires-Python {row['requires_python'] or '?'}, "
                       f"{len(row['requires_dist'])} requirements (from {row['metadata_from']})")


def main() -> None:
    try:
        cli.main(prog_name="nlpsetup")
    except KeyboardInterrupt:  # pragma: no cover - interrupted before click took over
        sys.stderr.write("nlpsetup: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
