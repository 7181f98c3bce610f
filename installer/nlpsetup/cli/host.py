"""The commands about this machine: `doctor` (the host, every env, or one recipe's constraints,
optionally as a Markdown report) and `host` (the facts nlpsetup detected)."""

from __future__ import annotations

import os

import click

from nlpsetup import __version__
from nlpsetup.base.errors import EXIT_FAILED, EXIT_OK, NlpsetupError
from nlpsetup.cli.context import echo_json, with_context
from nlpsetup.cli.options import json_option


@click.command()
@click.argument("tool", required=False)
@json_option
@click.option("--quick", is_flag=True, help="Skip the slow checks (index probe, smoke checks, pip check).")
@click.option("--deep", is_flag=True, help="Run every env's smoke checks and pip check afresh, even if its files are unchanged.")
@click.option("--fix", "do_fix", is_flag=True, help="Recover interrupted installs and remove half-built envs.")
@click.option("--report", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write a Markdown report, ready to paste into an issue (-: to stdout).")
@with_context
def doctor(app, tool, as_json, quick, deep, do_fix, report):
    """Diagnose the host and every env (or, with TOOL, each constraint of its recipe).

    Exit 0 with no failure (warnings allowed), 1 with at least one."""
    from pathlib import Path

    from nlpsetup.base import diagnose, paths
    from nlpsetup.base.redact import mask_env
    from nlpsetup.doctor import report as doctor
    from nlpsetup.ui import render

    if report == "-" and as_json:
        raise NlpsetupError("--json and --report - both write to standard output", hint="write the report to a file: --report FILE")
    host = app.host()
    result = doctor.run(app.book(), host, None if tool else app.home(checked=True), tool=tool, quick=quick, deep=deep,
                        do_fix=do_fix)
    for line in result.fixed:
        click.echo(line if "not changed" in line else f"fixed: {line}", err=True)
    if report:
        text = render.doctor_markdown(host.to_dict(), result.groups, mask_env(doctor.report_env(os.environ)),
                                      diagnose.last_failure(paths.logs_dir(app.home())), __version__)
        if report == "-":  # the report is the output; the summary goes beside it, to stderr
            click.echo(text, nl=False)
        else:
            Path(report).write_text(text, encoding="utf-8")
            click.echo(f"wrote {report}", err=True)
    echo_json(result.to_dict()) if as_json else click.echo(render.doctor_summary(result), err=report == "-")
    return EXIT_FAILED if result.failed else EXIT_OK


@click.command("host")
@json_option
@with_context
def host_cmd(app, as_json: bool) -> None:
    """The facts nlpsetup detected about this machine."""
    from nlpsetup.ui import render

    h = app.host()
    echo_json(h.to_dict()) if as_json else click.echo(render.host_text(h))

