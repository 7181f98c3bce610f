"""Every test runs with its own NLPSETUP_HOME and no user recipe folders, and never sees the
developer's pip configuration unless a test sets one up on purpose."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"

# Property tests: a fixed seed in CI, so a red run always means a change; fresh random seeds elsewhere
# (HYPOTHESIS_PROFILE=dev runs them in a CI session of their own).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run the slow tests that install from PyPI")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow") or os.environ.get("NLPSETUP_SLOW") == "1":
        return
    in_ci = bool(os.environ.get("CI"))
    skip = pytest.mark.skip(reason="slow: installs from PyPI; run with --run-slow or NLPSETUP_SLOW=1")
    for item in items:
        # CI runs the small real subset marked `ci` (one small recipe per backend); the rest is opt-in.
        if "slow" in item.keywords and not (in_ci and "ci" in item.keywords):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    home = tmp_path / "nlpsetup-home"
    monkeypatch.setenv("NLPSETUP_HOME", str(home))
    monkeypatch.delenv("NLPSETUP_RECIPES_PATH", raising=False)
    monkeypatch.delenv("NLPSETUP_TORCH_INDEX_URL", raising=False)
    monkeypatch.delenv("NLPSETUP_CUDA_DRIVER", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return home


@pytest.fixture
def run_cli():
    """Run `nlpsetup ARGS` in a child process, as a user would; returns (code, stdout, stderr)."""
    import subprocess

    def run(*args, env=None, cwd=None, timeout=120):
        full_env = {**os.environ, **(env or {})}
        p = subprocess.run([sys.executable, "-m", "nlpsetup", *args], capture_output=True, text=True,
                           env=full_env, cwd=cwd, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    return run


@pytest.fixture
def home(tmp_path):
    """An NLPSETUP_HOME of the test's own."""
    return tmp_path / "home"


@pytest.fixture
def cli(kit, home):
    """`nlpsetup ARGS` in a child process against the local index (`kit`) and `home`; returns
    (code, stdout, stderr). No command may end in a traceback of its own (one at the start of a line;
    a failed smoke check's traceback is shown indented, as the package's output): asserted and counted."""
    import re
    import subprocess

    import figures
    import installkit

    def run(*args, env=None, timeout=300):
        p = subprocess.run([sys.executable, "-m", "nlpsetup", *args], capture_output=True, text=True,
                           env=installkit.environ(kit, home, **(env or {})), timeout=timeout)
        crashed = re.search(r"^Traceback", p.stderr, re.M) is not None
        figures.add("tracebacks", int(crashed))
        assert not crashed, p.stderr
        return p.returncode, p.stdout, p.stderr

    return run


@pytest.fixture(scope="session")
def kit(tmp_path_factory):
    """The local index of tiny wheels and recipes for them (see installkit), built once per run."""
    import installkit

    return installkit.build(tmp_path_factory.mktemp("kit"))


def write_host(tmp_path: Path, **facts) -> Path:
    path = tmp_path / "host.json"
    path.write_text(json.dumps(facts))
    return path


def pytest_sessionfinish(session):
    """On an xdist worker, hand this worker's counters to the controller (pytest_testnodedown)."""
    import figures

    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["figures"] = dict(figures.COUNTS)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: the suite also runs without xdist (-p no:xdist)
def pytest_testnodedown(node, error):
    import figures

    figures.COUNTS.update(getattr(node, "workeroutput", {}).get("figures", {}))


def pytest_terminal_summary(terminalreporter):
    import figures

    if figures.COUNTS:
        terminalreporter.write_sep("-", "reliability figures")
        fixed = ("hostile inputs tried", "fault points exercised", "secrets planted", "secrets found in output",
                 "envs lost")
        for name in (*fixed, *sorted(set(figures.COUNTS) - set(fixed))):  # and every counter a test added
            terminalreporter.write_line(f"{name}: {figures.COUNTS.get(name, 0)}")
