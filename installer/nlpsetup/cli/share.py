"""Commands that hand an env to someone else: `lock` (nlpsetup's own lock JSON), `export` (a PEP 751
pylock.toml or a hashed requirements file), `bundle` (every wheel for an offline install) and
`completion` (the shell script that completes commands, tool names and env names). Options in, one
core call, a result out."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from nlpsetup.base.errors import NlpsetupError
from nlpsetup.cli import completion
from nlpsetup.cli.context import echo_json, with_context
from nlpsetup.cli.options import ARCH_CHOICE, check_glibc, env_argument, json_option

# PEP 751: pylock.toml, or pylock.NAME.toml; installers (uv) recognise the file by that name.
_PYLOCK_NAME = re.compile(r"^pylock\.([^.]+\.)?toml$")


@click.command()
@env_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write the lock here (default, or -: stdout).")
@click.option("--as-of", "as_of", metavar="DATE|latest", help="Check that every release was on the index by DATE, and record it.")
@with_context
def lock(app, env, output, as_of):
    """The env's exact pins, with the interpreter and platform it was built for."""
    from nlpsetup.share import lockfile

    data = lockfile.of_env(app.store().existing(env), as_of=as_of)
    echo_json(data) if output in (None, "-") else click.echo(lockfile.write(output, data))


@click.command()
@env_argument
@click.option("--format", "fmt", type=click.Choice(["pylock", "requirements"]), default="pylock", show_default=True,
              help="pylock: a PEP 751 pylock.toml; requirements: pins with --hash lines.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), help="Write here (default, or -: stdout).")
@with_context
def export(app, env, fmt, output):
    """A standard lock of exactly what ENV holds, each release with its sha256 hashes.

    Install it with `uv pip install -r pylock.toml`, `pip install --require-hashes -r FILE`, or
    `nlpsetup install --from-lock pylock.toml`."""
    from nlpsetup.share import lockfile, pylock

    path = app.store().existing(env)
    data = lockfile.lockable_manifest(path)
    sources = lockfile.sources_for(data)
    files = lockfile.release_files(data, sources)
    hashes = {k: sorted({f"sha256:{f.sha256}" for f in fs}) for k, fs in files.items()}
    indexes = [*((sources.torch_index,) if sources.torch_index else ()), *sources.indexes, *sources.find_links]
    lock = lockfile.from_manifest(data, hashes, indexes)
    text = pylock.dumps(lock, files) if fmt == "pylock" else pylock.requirements_text(lock)
    if output in (None, "-"):
        click.echo(text, nl=False)
        return
    if fmt == "pylock" and not _PYLOCK_NAME.fullmatch(Path(output).name):
        click.echo(f"nlpsetup: warning: PEP 751 names lock files pylock.toml or pylock.NAME.toml; "
                   f"uv and pip recognise {Path(output).name} only by such a name", err=True)
    from nlpsetup.base.files import write_text_atomic

    write_text_atomic(Path(output), text)
    click.echo(f"wrote {output} ({len(files)} releases with their hashes, Python {lock['python']['version']})")


@click.command()
@click.argument("target", shell_complete=completion.tools_and_envs)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="The bundle's folder (new or empty).")
@click.option("--python", "python", help="Bundle for this Python (X.Y) on the target host.")
@click.option("--platform", type=click.Choice(["linux", "macos", "windows"]), help="Bundle for another OS.")
@click.option("--arch", type=ARCH_CHOICE, help="Bundle for another CPU architecture.")
@click.option("--glibc", callback=check_glibc, help="The target Linux host's glibc (default: this host's, or 2.39).")
@click.option("--timeout", type=click.IntRange(1, 6 * 3600), default=3600, show_default=True,
              help="Time limit of each download, in seconds.")
@click.option("--as-of", "as_of", metavar="DATE|latest", help="Dependencies as of DATE, over the recipe's as_of.")
@json_option
@with_context
def bundle(app, target, output, python, platform, arch, glibc, timeout, as_of, as_json):
    """Every wheel TARGET (a tool, or an installed env) needs, its lock, recipe and a README, for
    `nlpsetup install --from-bundle DIR` on a host with no network.

    Exit 0 with the bundle written, 1 when a download failed, 2 for bad input, 3 when the target
    host cannot have the tool."""
    from nlpsetup.plan import planning
    from nlpsetup.share import bundle as bundles
    from nlpsetup.ui import render

    if output == "-":
        raise NlpsetupError("bundle writes a folder of wheels, which standard output (-o -) cannot hold",
                            hint="name a new or empty folder: nlpsetup bundle TARGET -o DIR")
    home, out = app.home(checked=True), Path(output)
    store = app.store()
    if not (platform or arch or glibc or python or as_of) and target in store.names():
        result = bundles.of_env(store.existing(target), out, None, home=home, timeout=timeout)
    else:
        host = app.host(platform, arch, None, glibc)
        plan = planning.plan_one(app.book(), target, host, planning.Choices(python=python, as_of=as_of), home)
        py = ".".join(plan.python.version.split(".")[:2])
        t = bundles.Target(host.os, host.arch, py, host.libc_version if host.os == "linux" else None)
        if not as_json:
            click.echo(f"nlpsetup: bundling {plan.tool} {plan.variant.id} for {t.os} {t.arch} CPython {py} "
                       f"-> {out}", err=True)
        result = bundles.of_plan(plan, out, t, home=home, timeout=timeout)
    echo_json(result.to_dict()) if as_json else click.echo(render.bundle_text(result))


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion_cmd(ctx, shell):
    """The shell script that completes nlpsetup's commands, options, tool names and env names.

    bash: eval "$(nlpsetup completion bash)" in ~/.bashrc; zsh: the same in ~/.zshrc;
    fish: nlpsetup completion fish > ~/.config/fish/completions/nlpsetup.fish"""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # click knows these three; a future click might not
        raise NlpsetupError(f"click has no completion for {shell}", hint="use bash, zsh or fish")
    sys.stdout.write(cls(ctx.find_root().command, {}, "nlpsetup", "_NLPSETUP_COMPLETE").source())
