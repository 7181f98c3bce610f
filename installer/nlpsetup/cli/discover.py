"""The command line of discovery (issue 24): what `install PKG` and `plan PKG` do for a package no
recipe covers (called by cli.envs), and the `recipe new PKG` command (main adds it to `recipe`).
Options in, one core call, lines out."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import click

from nlpsetup.base.errors import EXIT_FAILED, EXIT_OK, NlpsetupError
from nlpsetup.base.redact import escape_controls
from nlpsetup.cli.context import echo_json, with_context
from nlpsetup.cli.options import json_option, search_limits


def no_recipe(book, spec: str) -> bool:
    """Whether `spec` (NAME or NAME==VERSION) names a package no recipe (nor alias) covers."""
    from nlpsetup.resolve.resolve import parse_tool

    name = parse_tool(spec).name
    return book.find(name) is None and book.broken_for(name) is None  # a broken NAME.toml is reported, not searched past


@contextmanager
def suggesting(book, spec: str):
    """A name neither a recipe nor the index has: suggest the close recipe names, as `show` does."""
    try:
        yield
    except NlpsetupError as exc:
        if exc.message.startswith("unknown tool") and (close := book.suggest(spec.partition("==")[0])):
            exc.hint = f"did you mean {' or '.join(close)}?"
        raise


def _attempt_line(a) -> None:
    click.echo(escape_controls(a.line()), err=True)


def plan(spec: str, host, as_json: bool, fetch_python: bool = False) -> int:
    from nlpsetup.authoring import discovery as discovery_run

    name, first = discovery_run.first_attempts(spec, host, fetch_python=fetch_python)
    if as_json:
        echo_json({"tool": name, "recipe": None, "search": [c.__dict__ for c in first]})
        return EXIT_OK
    click.echo(f"no recipe for {name}: `nlpsetup install {spec}` searches for a working env; it tries first:")
    for c in first:
        click.echo(f"  {c.label()}")
    return EXIT_OK


def install(spec: str, host, root: Path, *, env_name, python, backend, force, max_attempts, time_limit,
            as_json: bool, quiet: bool, write_to: Path | None = None, verbose: bool = False,
            fetch_python: bool = False, every_python: bool = False) -> int:
    from nlpsetup.authoring import discovery as discovery_run
    from nlpsetup.execution.reporter import NullReporter
    from nlpsetup.ui import progress

    def start(name: str, candidates: int) -> None:  # the index has the package: the search begins
        click.echo(f"nlpsetup: no recipe for {name}: searching for a working env ({candidates} candidates; at most "
                   f"{max_attempts} attempts, {time_limit}s)", err=True)

    options = dict(backend=backend, fetch_python=fetch_python, limits=discovery_run.Limits(max_attempts, time_limit),
                   on_start=(lambda name, n: None) if as_json or quiet else start,
                   on_attempt=(lambda a: None) if as_json or quiet else _attempt_line,
                   # one line per attempt; each install's steps and checks only with --verbose (they
                   # are in the log the attempt line names)
                   reporter=progress.TermReporter(verbose=True) if verbose and not as_json else NullReporter())
    if every_python:  # recipe new: a variant per range of this host's Pythons that verifies
        result = discovery_run.search_all(spec, host, root, write_to=write_to, **options)
    else:
        result = discovery_run.search(spec, host, root, env_name=env_name, force=force, python=python,
                                      write_to=write_to, **options)
    pythons = [result.found.candidate.python, *(f.candidate.python for f in result.also)]
    if as_json:
        echo_json({"ok": True, "env": result.env_path, "recipe": str(result.recipe_path), "pythons": pythons,
                    "attempts": [{"candidate": a.candidate.__dict__, "stage": a.stage, "ok": a.ok, "why": a.why,
                                  "diagnosis": a.diagnosis.kind if a.diagnosis else None, "log": a.log}
                                 for a in result.attempts]})
    else:
        click.echo(f"{result.found.name} is ready ({result.found.candidate.label()}); recipe written to "
                   f"{result.recipe_path}" + (f" (verified on Python {', '.join(pythons)})" if every_python else ""))
    return EXIT_OK if result.found else EXIT_FAILED


@click.command("new")
@click.argument("package")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the recipe here (default: the discovered recipes in NLPSETUP_HOME).")
@click.option("--python", help="Search with this Python minor only (e.g. 3.8).")
@click.option("--fetch-python", is_flag=True, help="Also try the Pythons uv can download that this host lacks.")
@click.option("--backend", type=click.Choice(["auto", "pip", "uv"]), default="auto", show_default=True)
@search_limits
@json_option
@with_context
def recipe_new(app, package, output, python, fetch_python, backend, max_attempts, time_limit, as_json):
    """Search for a verified env of PACKAGE (built in a temporary home) and write its recipe: the
    winner, then the same on each other Python of this host, one variant per range that verifies
    (--python: that one only). The attempt and time limits bound the whole."""
    import tempfile

    from nlpsetup.facts import host as host_mod

    root = app.home(checked=True)
    target = Path(output).absolute() if output else None
    with tempfile.TemporaryDirectory(prefix="nlpsetup-recipe-new-", dir=root) as tmp:
        host = host_mod.load(root)
        return install(package, host, Path(tmp), env_name=None, python=python, backend=backend, force=True,
                       max_attempts=max_attempts, time_limit=time_limit, as_json=as_json, quiet=False,
                       write_to=target or _discovered(root, package), fetch_python=fetch_python,
                       every_python=python is None)


def _discovered(root: Path, package: str) -> Path:
    from packaging.utils import canonicalize_name

    from nlpsetup.base import paths

    return paths.discovered_recipes_dir(root) / f"{canonicalize_name(package.partition('==')[0])}.toml"

