"""The commands that change a built env, each change verified (`add`, `upgrade`, `kernel`), and
the helpers cli.envs calls for `install --kernel`, `remove` and `envs --outdated`. Options in,
one core call (changes, kernels), a result out. Errors reach the user through main's one error
contract."""

from __future__ import annotations

import os

import click

from nlpsetup.base.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, NlpsetupError
from nlpsetup.cli import completion
from nlpsetup.cli.context import Context, echo_json, error_doc, with_context
from nlpsetup.cli.options import env_argument, json_option, no_wait_option, quiet_option


def _reporter(as_json: bool, quiet: bool = False):
    from nlpsetup.ui import progress

    return progress.reporter_for(os.environ, quiet=as_json, verbose=False, silent=quiet)


def change_text(c) -> str:
    """The end of an add or upgrade: what changed (name old -> new), or what failed and why."""
    if c.skipped:
        return f"nlpsetup: skipped {c.env}: {c.message}"
    if c.ok:
        lines = [f"nlpsetup: {c.env}: {c.action} done, smoke checks passed ({c.backend})."]
        lines += [f"  {x['name']} {x['old'] or '(new)'} -> {x['new'] or '(removed)'}" for x in c.changed]
        return "\n".join(lines if c.changed else [*lines, "  nothing changed: already the newest allowed"])
    lines = [f"nlpsetup: {c.message}"]
    lines += [f"  pin: {x['req']}" + (f"  # {x['why']}" if x["why"] else "") + (f" ({x['url']})" if x["url"] else "")
              for x in c.conflicts]
    if c.diagnosis:
        lines.append(f"  likely cause: {c.diagnosis}")
    from nlpsetup.execution.smoke import last_lines

    shown = last_lines(list(c.tail), 10)  # capped: the log has it all
    lines += ["  last lines:", *[f"    {t}" for t in shown]] if shown else []
    lines += [f"  full log: {c.log}"] if c.log else []
    return "\n".join(lines)


def _finish(changes: list, as_json: bool) -> int:
    ok = all(c.ok for c in changes)
    if as_json:
        docs = [{**c.to_dict(), **({} if c.ok else error_doc(c.message, c.diagnosis, EXIT_FAILED))} for c in changes]
        echo_json(docs[0] if len(docs) == 1 else docs)
    else:
        for c in changes:
            click.echo(change_text(c), err=not c.ok)
    return EXIT_OK if ok else EXIT_FAILED


@click.command()
@env_argument
@click.argument("packages", nargs=-1, required=True)
@no_wait_option
@quiet_option
@json_option
@with_context
def add(app, env, packages, no_wait, quiet, as_json):
    """Install PACKAGES into ENV under its recipe's pins (as constraints), then run its smoke checks.

    If the install or a check fails the env is put back as it was (exit 1); a package that
    conflicts with a pin is refused with the pin and why it is there."""
    from nlpsetup.execution import changes

    return _finish([changes.add(app.store(), env, list(packages), app.book(), _reporter(as_json, quiet),
                                   wait=not no_wait)], as_json)


@click.command()
@click.argument("envs", nargs=-1, shell_complete=completion.env_names)
@click.option("--all", "all_envs", is_flag=True, help="Upgrade every env.")
@no_wait_option
@quiet_option
@click.option("--as-of", "as_of", metavar="DATE|latest", help="Upgrade as of DATE (default: the env's recorded date).")
@json_option
@with_context
def upgrade(app, envs, all_envs, no_wait, quiet, as_of, as_json):
    """Upgrade ENV to the newest releases its recipe variant allows (additions kept), verified;
    rolled back if a step or smoke check fails. Prints what changed."""
    from nlpsetup.execution import changes

    store = app.store()
    names = store.names() if all_envs else list(envs)
    if not names:
        raise NlpsetupError("name an env to upgrade, or pass --all", hint="see the envs: nlpsetup envs --outdated")
    book, host, reporter = app.book(), app.host(), _reporter(as_json, quiet)
    if len(names) == 1 and not all_envs:
        return _finish([changes.upgrade(store, names[0], book, host, reporter, wait=not no_wait, as_of=as_of)], as_json)
    done = []
    for n in names:  # a batch: each env's result as soon as it is there; an odd env is passed over
        try:
            c = changes.upgrade(store, n, book, host, reporter, wait=not no_wait, as_of=as_of)
        except changes.Skipped as exc:
            c = changes.Change(True, n, "upgrade", exc.message, skipped=True)
        except NlpsetupError as exc:  # tried and failed before it began (its recipe gone, busy): the rest go on
            c = changes.Change(False, n, "upgrade", f"upgrade {n} failed: {exc.message}", diagnosis=exc.hint)
        done.append(c)
        if not as_json:
            click.echo(change_text(c), err=not c.ok or c.skipped)
    if as_json:
        _finish(done, as_json)
    else:
        click.echo(batch_summary(done))
    if not all(c.ok for c in done):
        return EXIT_FAILED
    return EXIT_USAGE if not all_envs and any(c.skipped for c in done) else EXIT_OK  # an env the user named


def batch_summary(done: list) -> str:
    """The last line of a batch: how many envs were changed, unchanged, skipped and failed."""
    counts = {"upgraded": sum(c.ok and not c.skipped and bool(c.changed) for c in done),
              "already newest": sum(c.ok and not c.skipped and not c.changed for c in done),
              "skipped": sum(c.skipped for c in done), "failed": sum(not c.ok for c in done)}
    return "nlpsetup: upgrade: " + ", ".join(f"{n} {what}" for what, n in counts.items())


@click.command()
@env_argument
@click.option("--remove", "remove_spec", is_flag=True, help="Remove the env's kernelspec instead.")
@no_wait_option
@quiet_option
@json_option
@with_context
def kernel(app, env, remove_spec, no_wait, quiet, as_json):
    """Register ENV as a Jupyter kernel `nlpsetup-ENV` (installing ipykernel under its pins, verified)."""
    from nlpsetup.envs import kernels

    if remove_spec:
        gone = kernels.remove(env, app.store().path(env))
        doc = {"env": env, "removed": str(gone) if gone else None}
        echo_json(doc) if as_json else click.echo(f"removed kernel {gone.name} ({gone})" if gone
                                                   else f"no nlpsetup kernel for {env}")
        return EXIT_OK
    return register_kernel(app, env, as_json, wait=not no_wait, quiet=quiet)


def register_kernel(app: Context, env: str, as_json: bool, *, wait: bool = True, echo: bool = True, quiet: bool = False) -> int:
    """ipykernel into the env (an addition, so upgrade keeps it), then the kernelspec."""
    from nlpsetup.envs import kernels
    from nlpsetup.execution import changes

    store = app.store()
    path = store.existing(env)
    data = changes.read_manifest(path)  # a corrupt one: one line naming the field, never a traceback
    if "ipykernel" not in {k.lower() for k in data.get("distributions", {})}:
        change = changes.add(store, env, ["ipykernel"], app.book(), _reporter(as_json, quiet), wait=wait)
        if not change.ok:
            return _finish([change], as_json) if echo else EXIT_FAILED
        data = changes.read_manifest(path)
    main = changes.main_package(data, app.book())
    folder = kernels.write(env, path, data, main)
    doc = {"env": env, "kernel": folder.name, "display_name": kernels.display_name(env, data, main),
           "path": str(folder)}
    if echo:
        echo_json(doc) if as_json else click.echo(f"kernel {doc['kernel']} ({doc['display_name']}) written to {folder}")
    return EXIT_OK


def forget_kernel(app: Context, env: str, quiet: bool = False) -> None:
    """After `remove ENV`: its kernelspec goes too (only one nlpsetup wrote)."""
    from nlpsetup.envs import kernels

    if (gone := kernels.remove(env, app.store().path(env))) and not quiet:
        click.echo(f"removed kernel {gone.name} ({gone})")


def show_outdated(app: Context, store, as_json: bool) -> int:
    from nlpsetup.execution import changes

    rows = changes.outdated(store, app.book())
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("every env has the newest releases its recipe allows")
    for r in [] if as_json else rows:
        click.echo(f"{r['env']:<20} {r['package']} {r['installed']} -> {r['newest']}   ({r['upgrade']})" if "newest" in r
                   else f"{r['env']:<20} {r['package']}: cannot check: {r['error']}")
    return EXIT_OK
