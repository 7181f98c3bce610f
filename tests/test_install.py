"""Real installs, fast and offline, against a local index of tiny wheels: success with pip and
uv, failures of every kind, rollback, interrupts, kills, concurrency, run, lock, manifests, logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import installkit

HAS_UV = bool(__import__("nlpsetup.resolve.backends", fromlist=["find_uv"]).find_uv())
needs_uv = pytest.mark.skipif(not HAS_UV, reason="uv is not installed (pip install 'nlpsetup[uv]')")


def manifest(home: Path, env: str) -> dict:
    return json.loads((home / "envs" / env / "nlpsetup.json").read_text())


def test_install_with_pip_builds_verifies_and_records_everything(cli, home):
    code, out, err = cli("install", "nlpdemo", "--backend", "pip")
    assert code == 0, err
    assert "installed and verified" in out and "nlpsetup run nlpdemo" in out
    m = manifest(home, "nlpdemo")
    assert m["schema_version"] == 1 and m["backend"] == "pip"
    assert m["tools"][0]["name"] == "nlpdemo" and m["tools"][0]["variant"] == "1"
    assert m["distributions"]["torch"] == "2.13.0+cpu", "torch must come from the PyTorch (mirror) index"
    assert m["distributions"]["nlpdemo"] == "1.0.0"
    assert [s["name"] for s in m["steps"]] == ["create", "framework", "install"]
    assert all(s["returncode"] == 0 and s["seconds"] >= 0 for s in m["steps"])
    assert m["smoke"] and all(s["passed"] for s in m["smoke"])
    assert m["smoke"][0]["import_seconds"] is not None
    log = Path(m["log"])
    assert log.is_file() and log.parent == home / "logs" and "$ " in log.read_text()
    code, out, _ = cli("envs", "--json")
    (row,) = json.loads(out)
    assert row["name"] == "nlpdemo" and row["status"] == "ok" and row["size_bytes"] > 0


@needs_uv
def test_install_with_uv_runs_the_same_plan(cli, home):
    code, out, err = cli("install", "nlpdemo", "--backend", "uv", "--name", "demo-uv")
    assert code == 0, err
    m = manifest(home, "demo-uv")
    assert m["backend"] == "uv"
    assert m["distributions"]["torch"] == "2.13.0+cpu" and m["distributions"]["nlpdemo"] == "1.0.0"
    assert "uv" in m["steps"][-1]["argv"][0] and "--python" in m["steps"][-1]["argv"]


@pytest.mark.installed(("tinytool", "pip"))
def test_run_passes_the_env_and_the_exit_code(cli):
    code, out, _ = cli("run", "tinytool", "--", "python", "-c",
                       "import os, sys, tinytool; print(tinytool.VERSION, os.environ['VIRTUAL_ENV']); sys.exit(7)")
    assert code == 7
    version, venv = out.split()
    assert version == "2.0.0" and venv.endswith("envs/tinytool")
    code, _, err = cli("run", "nope", "--", "python")
    assert code == 2 and "no env named 'nope'" in err
    # `install TinyTool` names its env as the index normalizes the name: the hint says which
    code, _, err = cli("run", "TinyTool", "--", "python")
    assert code == 2 and "did you mean tinytool? (an env is named after its tool, normalized as the index does" in err, err


def test_reinstall_of_the_same_thing_reports_it_present(cli):
    assert cli("install", "tinytool")[0] == 0
    code, out, _ = cli("install", "tinytool")
    assert code == 0 and "already installed" in out


@pytest.mark.parametrize("backend", ["pip", pytest.param("uv", marks=needs_uv)])
@pytest.mark.parametrize(("tool", "words"), [
    ("brokenimport", ["smoke check failed", "brokenimport needs libfoo.so.1"]),
    ("needsold", ["step install failed", "no release fits"]),
    ("buildfails", ["step install failed", "C compiler is missing"]),
])
def test_a_failed_new_install_leaves_nothing_and_says_why(cli, home, tool, words, backend):
    code, out, err = cli("install", tool, "--backend", backend)
    assert code == 1
    for w in words:
        assert w in err, err
    assert "full log:" in err and "nlpsetup/" not in err.split("last lines:")[0]
    assert "installer/nlpsetup" not in err, "nlpsetup itself must not crash"
    assert not (home / "envs" / tool).exists()
    assert list((home / "envs").iterdir()) == []
    assert not list((home / "journal").glob("*.json"))


def test_keep_failed_keeps_the_env_for_inspection(cli, home):
    code, _, err = cli("install", "brokenimport", "--keep-failed", "--backend", "pip")
    assert code == 1 and "kept at" in err
    assert (home / "envs" / "brokenimport" / "pyvenv.cfg").exists()


BANNER_RECIPE = r'''
name = "banner"
summary = "a tool whose smoke check fails as nltk does without its data: a flood, then a banner"
homepage = "https://example.org/banner"
status = "active"

[[variants]]
id = "1"
python = ">=3.8"
packages = ["tinytool==2.0.0"]
[variants.smoke]
code = """
import tinytool
for i in range(5000):
    print("loading part", i, "x" * 200)
raise LookupError("\\n" + "*" * 70 + "\\n  Resource punkt_tab not found.\\n  Please use the NLTK Downloader\\n" + "*" * 70)
"""
'''


def test_a_failed_smoke_check_names_its_exception_and_prints_a_capped_tail(cli, kit, home, tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "banner.toml").write_text(BANNER_RECIPE)
    code, _, err = cli("install", "banner", "--backend", "pip",
                       env={"NLPSETUP_RECIPES_PATH": os.pathsep.join([str(recipes), kit["recipes"]])})
    assert code == 1
    assert "smoke check failed: code: import tinytool: LookupError: Resource punkt_tab not found." in err, err
    assert "--keep-failed" in err
    assert not [ln for ln in err.splitlines() if ln.strip() and set(ln.strip()) <= set("*")], "no banner of asterisks"
    assert len(err) < 8000, f"{len(err)} characters: the output must be capped"
    log = err.split("full log: ")[1].split()[0]
    assert "loading part 4999" in Path(log).read_text(), "the log keeps the whole output"


@pytest.mark.parametrize("backend", ["pip", pytest.param("uv", marks=needs_uv)])
def test_a_failed_reinstall_puts_the_old_env_back(cli, home, backend):
    assert cli("install", "nlpdemo", "--name", "shared", "--backend", backend)[0] == 0
    before = manifest(home, "shared")
    code, _, err = cli("install", "brokenimport", "--name", "shared", "--force", "--backend", backend)
    assert code == 1 and "the previous env is back in place" in err
    assert manifest(home, "shared") == before
    code, out, err = cli("verify", "shared")
    assert code == 0 and "shared: ok" in out, err
    assert not list((home / "envs").glob(".*"))


def test_a_step_past_its_time_limit_is_stopped_and_rolled_back(cli, home):
    start = time.monotonic()
    code, _, err = cli("install", "slowbuild", "--step-timeout", "4", "--backend", "pip")
    assert code == 1 and time.monotonic() - start < 60
    assert "stopped after 4 s" in err and "backtracking" in err
    assert not (home / "envs" / "slowbuild").exists()


def test_a_smoke_check_that_hangs_fails_on_its_timeout(cli, home):
    code, _, err = cli("install", "sleepy", "--backend", "pip")
    assert code == 1 and "timed out after 2 s" in err
    assert not (home / "envs" / "sleepy").exists()


def test_unreachable_torch_index_falls_back_to_pypi_with_a_size_warning(cli, home):
    code, _, err = cli("install", "nlpdemo", "--backend", "pip",
                       env={"NLPSETUP_TORCH_INDEX_URL": "http://127.0.0.1:9/whl"})
    assert code == 0, err
    assert "cannot be reached" in err and "MB" in err
    m = manifest(home, "nlpdemo")
    assert m["distributions"]["torch"] == "2.13.0" and "fallback" in m["compute"]["index"]


@pytest.mark.installed(("tinytool", "pip"))
def test_verify_reports_drift_and_a_broken_interpreter(cli, home):
    py = home / "envs" / "tinytool" / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "-q", "tinytool"], check=True,
                   env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    code, out, err = cli("verify", "tinytool", "--json")
    (r,) = json.loads(out)
    assert code == 1 and r["drift"]["removed"] == ["tinytool==2.0.0"] and not r["ok"]
    for p in (home / "envs" / "tinytool" / "bin").glob("python*"):
        p.unlink()
    code, out, _ = cli("envs", "--json")
    assert json.loads(out)[0]["status"] == "broken"


def test_remove_needs_yes_when_not_interactive_and_leaves_nothing(cli, home):
    assert cli("install", "tinytool")[0] == 0
    code, _, err = cli("remove", "tinytool")
    assert code == 2 and "--yes" in err
    code, out, _ = cli("remove", "tinytool", "--yes")
    assert code == 0 and not (home / "envs" / "tinytool").exists()
    assert [p for p in (home / "envs").iterdir()] == []


def test_lock_and_install_from_lock_rebuild_the_same_env(cli, home, tmp_path):
    assert cli("install", "nlpdemo", "--backend", "pip")[0] == 0
    lock_file = tmp_path / "nlpdemo.lock.json"
    code, out, _ = cli("lock", "nlpdemo", "-o", str(lock_file))
    assert code == 0
    lock = json.loads(lock_file.read_text())
    assert lock["kind"] == "nlpsetup-lock" and lock["distributions"]["nlpdemo"] == "1.0.0"
    assert lock["python"]["version"] and lock["platform"]["os"] == sys.platform.replace("darwin", "macos")
    code, _, err = cli("install", "--from-lock", str(lock_file), "--name", "copy", "--backend", "pip")
    assert code == 0, err
    original, copy = manifest(home, "nlpdemo")["distributions"], manifest(home, "copy")["distributions"]
    assert {k: v for k, v in copy.items() if k not in ("pip", "setuptools", "wheel")} == \
        {k: v for k, v in original.items() if k not in ("pip", "setuptools", "wheel")}
    lock["platform"]["os"] = "windows"
    lock_file.write_text(json.dumps(lock))
    code, _, err = cli("install", "--from-lock", str(lock_file), "--name", "other")
    assert code == 3 and "built for windows" in err


def test_several_tools_share_one_env(cli, home):
    code, _, err = cli("install", "tinytool", "nlpdemo", "--name", "both", "--backend", "pip")
    assert code == 0, err
    m = manifest(home, "both")
    assert [t["name"] for t in m["tools"]] == ["tinytool", "nlpdemo"]
    assert {"tinytool", "nlpdemo", "torch"} <= set(m["distributions"])


def test_concurrent_installs_of_one_env_build_it_once(kit, home):
    env = installkit.environ(kit, home)
    procs = [subprocess.Popen([sys.executable, "-m", "nlpsetup", "install", "tinytool", "--backend", "pip"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    built = sum("installed and verified" in o for o, _ in outs)
    present = sum("already installed" in o for o, _ in outs)
    assert (built, present) == (1, 3), outs


def test_concurrent_installs_of_different_envs_all_succeed(kit, home):
    env = installkit.environ(kit, home)
    procs = [subprocess.Popen([sys.executable, "-m", "nlpsetup", "install", "tinytool", "--name", f"t{i}",
                               "--backend", "pip"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for i in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    assert sorted(p.name for p in (home / "envs").iterdir()) == ["t0", "t1", "t2"]


def test_no_wait_fails_at_once_when_the_env_is_busy(kit, home):
    from filelock import FileLock

    (home / "locks").mkdir(parents=True)
    with FileLock(str(home / "locks" / "tinytool.lock")):
        p = subprocess.run([sys.executable, "-m", "nlpsetup", "install", "tinytool", "--no-wait"],
                           capture_output=True, text=True, env=installkit.environ(kit, home), timeout=60)
    assert p.returncode == 1 and "being changed by another nlpsetup" in p.stderr


# interrupts and kills -------------------------------------------------------------------------


def _start_slow_install(kit, home, *extra):
    """Start installing `slowbuild` (its build hangs) and return once the install step is under way:
    its transaction begun (the journal written) and pip running (its first line in the step's log).
    Polled, never a fixed wait: a reinstall's home already holds a log with "## install" in it, from
    the first install; and a signal that lands while pip is being forked is lost in Python's at-fork
    hooks, so the step's header alone is too early."""
    env = installkit.environ(kit, home)
    old_logs = set((home / "logs").glob("*.log")) if (home / "logs").exists() else set()
    p = subprocess.Popen([sys.executable, "-m", "nlpsetup", "install", "slowbuild", "--backend", "pip", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None:
        logs = set((home / "logs").glob("*.log")) - old_logs if (home / "logs").exists() else set()
        if (home / "journal" / "slowbuild.json").exists() and any(_pip_running(x.read_text()) for x in logs):
            return p
        time.sleep(0.05)
    p.kill()
    raise AssertionError(f"the install never reached its install step: {p.communicate()[1][-2000:]}")


def _pip_running(log: str) -> bool:
    """Whether the log's install step has output from pip (lines after its header that are not
    nlpsetup's own '#' notes)."""
    _, found, after = log.partition("\n## install")
    return bool(found) and any(ln.strip() and not ln.startswith("#") for ln in after.splitlines()[1:])


def _kill_leftovers(home: Path) -> None:
    """pip runs in its own process group; after a SIGKILL of nlpsetup nothing stops it but us."""
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            if str(home) in (pid_dir / "cmdline").read_text() or str(home) in os.readlink(pid_dir / "cwd"):
                os.kill(int(pid_dir.name), signal.SIGKILL)
        except OSError:
            continue


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("reinstall", [False, True], ids=["fresh", "reinstall"])
def test_ctrl_c_mid_step_rolls_back_and_exits_130(kit, home, cli, reinstall):
    if reinstall:
        assert cli("install", "tinytool", "--name", "slowbuild")[0] == 0
        before = manifest(home, "slowbuild")
    p = _start_slow_install(kit, home, *(("--force",) if reinstall else ()))
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "rolled back" in err and "Traceback" not in err
    if reinstall:
        assert manifest(home, "slowbuild") == before
    else:
        assert not (home / "envs" / "slowbuild").exists()
    assert not list((home / "journal").glob("*.json"))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("reinstall", [False, True], ids=["fresh", "reinstall"])
def test_a_killed_install_is_recovered_by_the_next_command(kit, home, cli, reinstall):
    if reinstall:
        assert cli("install", "tinytool", "--name", "slowbuild")[0] == 0
        before = manifest(home, "slowbuild")
    p = _start_slow_install(kit, home, *(("--force",) if reinstall else ()))
    p.kill()
    p.wait(timeout=30)
    _kill_leftovers(home)
    assert list((home / "journal").glob("*.json")), "a killed install must leave its journal"
    code, out, err = cli("envs", "--json")
    assert code == 0
    if reinstall:
        assert "restored the previous env" in err
        assert manifest(home, "slowbuild") == before
        assert cli("verify", "slowbuild")[0] == 0
    else:
        assert "removed a half-built env" in err
        assert json.loads(out) == []
    assert not list((home / "journal").glob("*.json"))
    assert not [p for p in (home / "envs").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(("lines", "words"), [
    (["ERROR: No matching distribution found for numpy<1.0"], "no release fits"),
    (["error: No solution found when resolving dependencies",
      "  cause: Because there is no version of spacy==3.8.99 and you require spacy==3.8.99, we can conclude"],
     "no release fits"),
    (["ERROR: ResolutionImpossible: for help visit ..."], "resolver conflict"),
    (["error: command 'gcc' failed: No such file or directory"], "C compiler is missing"),
    (["OSError: [Errno 28] No space left on device"], "disk full"),
    (["WARNING: Retrying ... Failed to establish a new connection: [Errno 111] Connection refused"],
     "network unreachable"),
    (["ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE."], "corrupt"),
    (["all good"], None),
])
def test_diagnosis_of_common_failures(lines, words):
    from nlpsetup.base.diagnose import diagnose

    found = diagnose(lines)
    assert (found is None) if words is None else (words in found)


FAKE_CONDA = '''#!{python}
"""A stand-in for `conda create --yes --prefix P [-c CHANNEL]... python=X.Y PKG...`: it makes the
prefix a venv of this interpreter and installs PKG from the test index, printing conda's phases."""
import os, subprocess, sys
args = sys.argv[1:]
assert args[:2] == ["create", "--yes"], args
prefix = args[args.index("--prefix") + 1]
rest = [a for i, a in enumerate(args) if i > args.index("--prefix") + 1]
channels = [rest[i + 1] for i, a in enumerate(rest) if a == "-c"]
specs = [a for i, a in enumerate(rest) if a != "-c" and (i == 0 or rest[i - 1] != "-c")]
python = next(s for s in specs if s.startswith("python="))
print("Channels:", " ".join(channels)); print("Collecting package metadata (repodata.json): done")
print("Solving environment: done"); print("## Package Plan ##  environment location:", prefix)
subprocess.run([sys.executable, "-m", "venv", prefix], check=True)
pkgs = [s for s in specs if s != python]
subprocess.run([os.path.join(prefix, "bin", "python"), "-m", "pip", "install", "-q", *pkgs], check=True)
print("Preparing transaction: done"); print("Executing transaction: done")
'''


def test_install_via_conda_uses_conda_to_create_the_env(kit, home, tmp_path):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    conda = bindir / "conda"
    conda.write_text(FAKE_CONDA.format(python=sys.executable))
    conda.chmod(0o755)
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    (recipes / "condatool.toml").write_text(installkit.RECIPE.format(
        name="condatool", id="1", packages='"tinytool==2.0.0"',
        extra='conda = { channels = ["conda-forge"], packages = ["tinytool==2.0.0"] }\nmain = "tinytool"',
        smoke='code = "import tinytool; assert tinytool.VERSION == \'2.0.0\'"', timeout=60).replace(
        'python = ">=3.8"', f'python = "=={minor}.*"'))
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
           "NLPSETUP_RECIPES_PATH": f"{recipes}{os.pathsep}{kit['recipes']}"}
    code, out, err = installkit.nlpsetup(kit, home, "install", "condatool", "--via", "conda", **env)
    assert code == 0, err
    m = manifest(home, "condatool")
    assert m["steps"][0]["argv"][:5] == ["conda", "create", "--yes", "--prefix", str(home / "envs" / "condatool")]
    assert "-c" in m["steps"][0]["argv"] and f"python={minor}" in m["steps"][0]["argv"]
    assert m["distributions"]["tinytool"] == "2.0.0" and m["smoke"][0]["passed"]
    code, _, err = installkit.nlpsetup(kit, home, "plan", "tinytool", "--via", "conda", **env)
    assert code == 3 and "has no conda packages" in err
