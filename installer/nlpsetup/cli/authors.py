"""The commands for recipe authors and CI maintainers (`recipe check|schema|test|outdated`,
`matrix`, `ci init`): options in, one core call, a result out, rendered by `render`. Errors
reach the user through main's one error contract."""

from __future__ import annotations

import json

import click

from nlpsetup.base.errors import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, NlpsetupError
from nlpsetup.base.redact import escape_controls
from nlpsetup.cli import completion
from nlpsetup.cli.context import echo_json, with_context
from nlpsetup.cli.options import ARCH_CHOICE, COMPUTE_HELP, check_glibc, json_option


def _matrix(app, tools, python, platform, compute, runner, provider="github", arch=None, glibc=None):
    from nlpsetup.authoring import matrix as mx
    from nlpsetup.resolve.resolve import compute_request

    compute = compute_request(compute)
    pythons, platforms, runners = mx.parse_options(python, platform, runner)
    return mx.build(app.book().pick(tools), pythons, platforms, compute=compute, runners=runners, provider=provider,
                    arch=arch, glibc=glibc)


@click.command()
@click.argument("tools", nargs=-1)
@click.option("--python", default="supported", show_default=True, help="Comma-separated versions, or 'supported'.")
@click.option("--platform", default="linux", show_default=True, help="Comma-separated: linux, macos, windows.")
@click.option("--compute", default="cpu", show_default=True, help=COMPUTE_HELP + " Runners have no GPU: auto is cpu.")
@click.option("--format", "fmt", type=click.Choice(["github", "gitlab", "json"]), default="json", show_default=True)
@click.option("--runner", multiple=True, help="Runner label for a platform, e.g. linux=ubuntu-22.04.")
@click.option("--arch", type=ARCH_CHOICE, help="CPU architecture of every platform (default: each runner's; aarch64 = arm64).")
@click.option("--glibc", callback=check_glibc, help="glibc of the Linux host (default 2.39, ubuntu-latest's).")
@with_context
def matrix(app, tools, python, platform, compute, fmt, runner, arch, glibc):
    """Every (tool, python, platform) cell the recipes allow, with the variant each resolves to.

    Refused cells are listed with their reasons (stderr for github and gitlab, `excluded` in json)."""
    from nlpsetup.authoring import matrix as mx

    m = _matrix(app, tools, python, platform, compute, runner, "gitlab" if fmt == "gitlab" else "github", arch, glibc)
    if fmt == "json":
        return echo_json(m.to_dict())
    click.echo(mx.github(m) if fmt == "github" else mx.gitlab(m), nl=fmt == "github")
    for line in m.hosts:
        click.echo(line, err=True)
    for x in m.excluded:
        click.echo(escape_controls(f"excluded {x['tool']} python {x['python']} {x['platform']}: {'; '.join(x['reasons'])}"), err=True)


@click.group()
def ci() -> None:
    """CI workflows made from the recipes."""


@ci.command("init")
@click.argument("tools", nargs=-1)
@click.option("--provider", type=click.Choice(["github", "gitlab"]), default="github", show_default=True)
@click.option("-o", "--output", help="Where to write, '-' for stdout (default: the provider's usual path).")
@click.option("--python", default="supported", show_default=True)
@click.option("--platform", default="linux", show_default=True)
@click.option("--install-spec", help="What the workflow pip-installs (default: this nlpsetup, pinned).")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Verify that the install spec resolves before writing (pip download --no-deps; needs the index).")
@click.option("--explain", is_flag=True, help="Say why each excluded cell is left out (each reason once).")
@click.option("--force", is_flag=True, help="Overwrite an existing file that differs.")
@with_context
def ci_init(app, tools, provider, output, python, platform, install_spec, check, explain, force):
    """Write a workflow whose matrix jobs install and verify each cell on a runner that can run it.

    It goes to the repository root's .github/workflows (or .gitlab-ci.yml) from anywhere in it, runs on
    pushes to the default branch and on pull requests, and its jobs and runner-minutes are listed."""
    from nlpsetup import __version__
    from nlpsetup.authoring import ciworkflow

    opts = ciworkflow.Options(tuple(tools), provider, python, platform, install_spec, output, force, check)
    if check:  # before writing: a workflow whose first step cannot install nlpsetup is no use
        click.echo(ciworkflow.check_spec(install_spec or ciworkflow.installed_spec()), err=True)
    w = ciworkflow.write(opts, app.book().pick(tools), __version__)
    if w.status == "differs":
        click.echo(w.diff)
        raise NlpsetupError(f"{w.path} exists and differs (diff above)", hint="pass --force to overwrite it")
    njobs = len(w.jobs)
    size = f"{len(w.matrix.include)} cells in {njobs} job{'s' if njobs != 1 else ''}"
    to_stderr = w.status == "stdout"  # the workflow itself is on stdout
    if w.status == "stdout":
        click.echo(w.text, nl=False)
    else:
        click.echo(f"{w.path} is up to date ({size})" if w.status == "unchanged" else f"wrote {w.path} ({size})")
    for line in ciworkflow.job_lines(w.jobs):
        click.echo(line, err=to_stderr)
    click.echo(f"at most {ciworkflow.minutes(list(w.matrix.include))} runner-minutes per run (jobs x timeout-minutes)",
               err=to_stderr)
    if w.matrix.excluded:
        n = len(w.matrix.excluded)
        click.echo(f"{n} cell{'s' if n != 1 else ''} excluded (no variant or no hosted runner fits)"
                   + (":" if explain else "; see why with --explain, or nlpsetup matrix"), err=True)
    for line in ciworkflow.exclusion_reasons(w.matrix) if explain else ():
        click.echo(escape_controls(line), err=True)


@click.group()
def recipe() -> None:
    """Work with recipe files."""


@recipe.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
def recipe_check(files, as_json) -> None:
    """Validate recipe files: exit 0 when all are valid, 2 otherwise, with every problem listed."""
    from nlpsetup.recipes import load as recipes
    from nlpsetup.ui import render

    results = recipes.check_files(files)
    if as_json:
        echo_json(render.recipe_check_dict(results))
    for line, is_error in () if as_json else render.recipe_check_lines(results):
        click.echo(line, err=is_error)
    return EXIT_USAGE if any(isinstance(r, Exception) for _, r in results) else EXIT_OK


@recipe.command("schema")
def recipe_schema() -> None:
    """The JSON Schema of recipe files (editors use it to complete and check keys)."""
    from nlpsetup.recipes import schema

    click.echo(json.dumps(schema.json_schema(), indent=2))


@recipe.command("test")
@click.argument("targets", nargs=-1, shell_complete=completion.tool_names)
@click.option("--all", "all_recipes", is_flag=True, help="Test every recipe.")
@click.option("--all-variants", is_flag=True, help="Test every variant, not only the one this host picks.")
@click.option("--variant-only", "variant_only", help="Test this variant only.")
@click.option("--python", "pythons", help="Comma-separated Python versions, or 'all' for every one on this machine.")
@click.option("--backend", type=click.Choice(["auto", "pip", "uv"]), default="auto", show_default=True)
@click.option("--plan-only", is_flag=True, help="Record what would be built, without building.")
@click.option("--record", type=click.Path(dir_okay=False), help="Merge the results into this JSON file.")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Write the whole record as a Markdown table.")
@click.option("--as-of", "as_of", metavar="DATE|latest", help="Dependencies as of DATE, over the recipe's as_of.")
@json_option
@click.option("-q", "--quiet", is_flag=True, help="Print only failures and the result table.")
@with_context
def recipe_test(app, targets, all_recipes, all_variants, variant_only, pythons, backend, plan_only, record,
                markdown, as_of, as_json, quiet):
    """Build each variant's env in a temporary home, run its smoke checks, record the result and
    remove the env. TARGETS are tool names or recipe files."""
    from nlpsetup.authoring import recipetest
    from nlpsetup.base.paths import logs_dir
    from nlpsetup.recipes import load as recipes
    from nlpsetup.ui import progress, render

    if not (all_recipes or targets):
        raise NlpsetupError("name a tool or a recipe file, or pass --all", hint="for example: nlpsetup recipe test spacy")
    recipetest.read_record(record)  # a --record file that is not one fails now, not after hours of builds
    chosen = recipes.targets(app.book(), [] if all_recipes else list(targets))
    host = app.host()
    reporter = progress.reporter_for({}, quiet=as_json, verbose=False, silent=quiet)
    rows = []
    for r in chosen:
        if not (as_json or quiet):
            click.echo(f"== {r.name}", err=True)
        rows += recipetest.run(r, host, all_variants=all_variants, pythons=recipetest.python_list(pythons, host),
                               backend=backend, reporter=reporter, keep_logs=logs_dir(app.home(checked=True)),
                               build=not plan_only, only=variant_only, as_of=as_of)
    recipetest.record(rows, record, markdown)
    echo_json(rows) if as_json else click.echo(render.recipe_test_text(rows))
    if (code := recipetest.exit_code(rows)) == EXIT_REFUSED and not as_json:
        click.echo("nlpsetup: nothing was built: this host cannot have any cell asked for", err=True)
    return code


@recipe.command("bump-date")
@click.argument("tool", shell_complete=completion.tool_names)
@click.option("--variant", help="The variant to move (default: the first).")
@click.option("--to", "to", default="today", show_default=True, metavar="DATE|today", help="The new as_of date.")
@click.option("--backend", type=click.Choice(["auto", "pip", "uv"]), default="auto", show_default=True)
@json_option
@with_context
def recipe_bump_date(app, tool, variant, to, backend, as_json):
    """Build TOOL's variant as of a newer date in a temporary home and run its smoke checks; only if
    they pass, write the date into the recipe file (that line alone). Exit 1 naming what broke."""
    from nlpsetup.authoring import recipetest
    from nlpsetup.base.paths import logs_dir
    from nlpsetup.recipes import load as recipes
    from nlpsetup.ui import progress

    recipe = recipes.targets(app.book(), [tool])[0]
    reporter = progress.reporter_for({}, quiet=as_json, verbose=False, silent=True)
    b = recipetest.bump_date(recipe, app.host(), variant=variant, to=to, backend=backend, reporter=reporter,
                             keep_logs=logs_dir(app.home(checked=True)))
    if as_json:
        echo_json(b.to_dict())
    elif b.ok:
        click.echo(f"nlpsetup: {b.tool} {b.variant}: as_of {b.old or '(none)'} -> {b.new}: smoke checks passed; "
                   f"wrote {b.path}")
    else:
        click.echo(f"nlpsetup: {b.tool} {b.variant}: as of {b.new} fails: {b.detail}; {b.path} left as it was", err=True)
        for line in b.changed:
            click.echo(f"  {line}", err=True)
    return EXIT_OK if b.ok else EXIT_FAILED


@recipe.command("outdated")
@click.argument("tools", nargs=-1)
@click.option("--index-url", help="Index to ask (default: pip's configured index, else PyPI).")
@json_option
@with_context
def recipe_outdated(app, tools, index_url, as_json):
    """Releases on the index newer than each recipe knows, with their real requirements.

    Exit 1 when a package could not be checked (the index did not answer, or has no such project)."""
    from nlpsetup.authoring import outdated
    from nlpsetup.ui import render

    rows = outdated.check_all(app.book().pick(tools), index_url)
    echo_json(rows) if as_json else click.echo(render.outdated_text(rows))
    return EXIT_FAILED if any("error" in r for r in rows) else EXIT_OK
