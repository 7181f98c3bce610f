"""Every test runs with its own NLPSETUP_HOME and no user recipe folders, and never sees the
developer's pip configuration unless a test sets one up on purpose."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"

# A shell starts a background job (`pytest &`, nohup) with SIGINT ignored, and children inherit
# that: the Ctrl-C tests would then send a signal nobody hears. A handler set here is reset to the
# default in every child nlpsetup the tests start, as a terminal user's would be.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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
def isolated(tmp_path_factory, monkeypatch):
    import installkit

    # Beside the test's tmp_path, not in it: tests that assert what a command wrote there see only that.
    home = tmp_path_factory.mktemp("nlpsetup-home", numbered=True) / "home"
    installkit.seed_home(home)  # this machine's interpreters already probed, as after a first command
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
def home(request, tmp_path):
    """An NLPSETUP_HOME of the test's own: empty, or, for a test marked
    `@pytest.mark.installed(("e", "pip"), ...)`, holding those tinytool envs as `nlpsetup install
    tinytool --name e --backend pip` leaves them (see `prebuilt`)."""
    marker = request.node.get_closest_marker("installed")
    if marker is None:
        return tmp_path / "home"
    return request.getfixturevalue("prebuilt")(*marker.args)


@pytest.fixture(scope="session")
def prebuilt(kit, tmp_path_factory):
    """Homes with tinytool envs, each installed once per worker by the real command and copied back
    into one fixed path before each test that asks (a venv cannot move: its scripts name their path).
    The install itself is tested elsewhere; this spares ~60 tests the same 3-5 s of setup each."""
    import shutil

    import installkit

    root = tmp_path_factory.mktemp("prebuilt")
    live = root / "home"
    made: dict[tuple, Path] = {}

    def clear(path: Path) -> None:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            for sub in (path, *path.rglob("*")):  # a test may leave read-only folders behind
                if sub.is_dir() and not sub.is_symlink():
                    sub.chmod(0o755)
            shutil.rmtree(path)

    def restore(*envs: tuple[str, str]) -> Path:
        envs = envs or (("e", "pip"),)
        for name, backend in envs:  # one pristine home per env, installed on first use
            if (name, backend) not in made:
                clear(live)
                code, _, err = installkit.nlpsetup(kit, live, "install", "tinytool", "--name", name,
                                                   "--backend", backend)
                assert code == 0, err
                made[name, backend] = root / f"pristine-{name}-{backend}"
                shutil.copytree(live, made[name, backend], symlinks=True)
        clear(live)
        for key in envs:  # several envs: their homes merged (envs/, locks/, logs/ and the same caches)
            shutil.copytree(made[key], live, symlinks=True, dirs_exist_ok=True)
        return live

    return restore


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


@pytest.hookimpl(optionalhook=True)  # an xdist hook
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than this process may use cores. Most tests spend part of their
    time waiting on a child (an install, a signal, a slow index): with as many workers as cores, a
    2-core run kept only 1.6 of them busy."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores + 1


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
