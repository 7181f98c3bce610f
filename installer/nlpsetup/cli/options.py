"""The options and arguments several commands share, so that one flag means one thing everywhere:
--json (which also makes errors JSON), --arch, --glibc, --compute's vocabulary, the plan and
simulation options, --as-of, --backend, the discovery search's limits, --no-wait and --quiet."""

from __future__ import annotations

import click

from nlpsetup.cli import completion

JSON_META = "nlpsetup.json"  # ctx.meta key: this command prints JSON, so errors must too


def _mark_json(ctx, _param, value):
    if value:
        ctx.meta[JSON_META] = True
    return value


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, callback=_mark_json, help="Print one JSON document.")(f)


# Linux calls arm64 aarch64: both are accepted (host.normalize_arch maps them).
ARCH_CHOICE = click.Choice(["x86_64", "arm64", "aarch64"], case_sensitive=False)


def check_glibc(ctx, param, value: str | None) -> str | None:
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


plan_options = _options(
    click.option("--variant", help="Use this variant (see `nlpsetup show TOOL`)."),
    click.option("--python", "python", help="A Python request: 3.8, cp39, python3.12, >=3.10 or a path."),
    click.option("--compute", default="auto", show_default=True, help=COMPUTE_HELP),
    click.option("--via", type=click.Choice(["pip", "conda"]), default="pip", show_default=True),
    click.option("--name", "env_name", help="Env name (default: the tool's name)."),
    click.option("--fetch-python", is_flag=True, help="Let uv download a missing Python (a package without a recipe: the search also tries the Pythons uv can download)."),
    as_of_option,
)
# Another machine, simulated: for plan only (install builds on this one).
simulate_options = _options(
    click.option("--platform", type=click.Choice(["linux", "macos", "windows"]), help="Resolve for another OS (simulated)."),
    click.option("--arch", type=ARCH_CHOICE, help="Resolve for another CPU architecture (simulated; aarch64 = arm64)."),
    click.option("--glibc", callback=check_glibc, help="Resolve for a Linux host with this glibc (simulated; default 2.39)."),
    click.option("--host-file", type=click.Path(dir_okay=False), help="Resolve for the host described in this JSON file."),
)


def search_limits(f):
    """The bounds of the search for a package no recipe covers (cli.discover)."""
    f = click.option("--time-limit", type=click.IntRange(10, 24 * 3600), default=1800, show_default=True,
                     help="A package without a recipe: stop searching after this many seconds.")(f)
    return click.option("--max-attempts", type=click.IntRange(1, 200), default=12, show_default=True,
                        help="A package without a recipe: try at most this many candidates.")(f)


backend_option = click.option("--backend", type=click.Choice(["auto", "pip", "uv"]), default="auto",
                              show_default=True, help="Installer: uv when found (auto), or pip.")

no_wait_option = click.option("--no-wait", is_flag=True, help="Fail at once if another nlpsetup is changing this env.")
quiet_option = click.option("-q", "--quiet", is_flag=True, help="Print only warnings, failures and the result.")
env_argument = click.argument("env", shell_complete=completion.env_names)
