"""Sessions: `nox -s tests` on every Python 3.10-3.13 found, `lint`, `slow` (real installs from PyPI) and
`explore` (the property tests on fresh random seeds)."""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.error_on_missing_interpreters = False  # skip locally; CI sets --error-on-missing-interpreters

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test,uv]")
    session.run("pytest", *session.posargs)


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "installer", "tests", "benchmarks", "noxfile.py")


@nox.session(python="3.12", default=False)
def explore(session: nox.Session) -> None:
    """The property tests on fresh random seeds: the suite itself runs them with a fixed seed under
    CI, so a red CI always means a change; this session is where new counterexamples are found."""
    session.install("-e", ".[test,uv]")
    session.run("pytest", "-m", "hypothesis", *session.posargs, env={"HYPOTHESIS_PROFILE": "dev"})


@nox.session(python="3.12", default=False)
def slow(session: nox.Session) -> None:
    """Installs real packages from PyPI (network, minutes)."""
    session.install("-e", ".[test,uv]")
    session.run("pytest", "-m", "slow", "--run-slow", *session.posargs)


@nox.session(python="3.12", default=bool(shutil.which("uv")))
def bench(session: nox.Session) -> None:
    session.install("-e", ".[uv]")
    session.run("python", "benchmarks/bench.py")


@nox.session(python="3.12", default=False)
def recipes(session: nox.Session) -> None:
    """Install and verify the recipes' matrix cells for the Pythons on this machine (real installs,
    long); the results land in docs/recipes.json and docs/recipes.md. Pass tool names to narrow it."""
    import json

    session.install("-e", ".[uv]")
    host = json.loads(session.run("nlpsetup", "host", "--json", silent=True))
    # Versions compare as numbers: as strings "3.10" < "3.6", which would drop 3.10-3.14.
    minors = {tuple(int(x) for x in p["version"].split(".")[:2]) for p in host["pythons"]}
    present = [f"{major}.{minor}" for major, minor in sorted(minors) if (major, minor) >= (3, 6)]
    out = session.run("nlpsetup", "matrix", *session.posargs, "--python", ",".join(present), "--format", "json",
                      silent=True)
    for cell in json.loads(out)["include"]:
        session.run("nlpsetup", "recipe", "test", cell["tool"], "--variant-only", cell["variant"], "--python",
                    cell["python"], "--record", "docs/recipes.json", "--markdown", "docs/recipes.md", success_codes=[0, 1])
