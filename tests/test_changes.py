"""Living in an env (issue 12): pip in every env, `add` under the recipe's pins, `upgrade`,
`envs --outdated`, Jupyter kernels, and plans that show the backend's real commands.

Real nlpsetup commands against local PEP 503 indexes (tests/wheelhouse.py): the kit's, plus a
small one per test with the packages these behaviours need."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import installkit
import wheelhouse
from nlpsetup.resolve.backends import find_uv

needs_uv = pytest.mark.skipif(find_uv() is None, reason="uv is not installed")

PINNED = """\
name = "pinned"
summary = "a tool with a pin"
homepage = "https://example.org/pinned"
status = "active"

[[variants]]
id = "1"
python = ">=3.9"
packages = ["{main}"]
[[variants.pins]]
req = "tinydep<2"
why = "pinned's parser breaks on tinydep 2's API"
url = "https://example.org/pinned/issues/1"
[variants.smoke]
code = "import uptool; assert uptool.OK"
"""


def _uptool(version: str, ok: bool = True) -> dict:
    body = "OK = True\n" if ok else f"raise ImportError('uptool {version} is broken')\n"
    return {"uptool/__init__.py": f"VERSION = {version!r}\n" + body}


def _extra_index(root: Path, *, uptool=("1.0.0",), broken=()) -> str:
    build = root / "build"
    wheels = [wheelhouse.build_wheel(build, "uptool", v, files=_uptool(v)) for v in uptool]
    wheels += [wheelhouse.build_wheel(build, "uptool", v, files=_uptool(v, ok=False)) for v in broken]
    wheels += [wheelhouse.build_wheel(build, "tinydep", v, files={"tinydep/__init__.py": f"V = {v!r}\n"})
               for v in ("1.0.0", "2.0.0")]
    wheels.append(wheelhouse.build_wheel(build, "goodadd", "1.0.0", requires=["tinydep"],
                                         files={"goodadd/__init__.py": "import tinydep\n"}))
    # An addition that overwrites the tool's own module: the smoke check catches it.
    wheels.append(wheelhouse.build_wheel(build, "breaker", "1.0.0",
                                         files={"uptool/__init__.py": "VERSION = 'broken'\nOK = False\n"}))
    return wheelhouse.write_simple_index(root / "extra", wheels)


@pytest.fixture
def pinned(kit, tmp_path):
    """(run, home, rebuild_index): nlpsetup against the kit plus an extra index and the `pinned` recipe."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "pinned.toml").write_text(PINNED.format(main="uptool>=1.0,<2"))
    extra = {"NLPSETUP_RECIPES_PATH": os.pathsep.join([str(recipes), kit["recipes"]]),
             "PIP_EXTRA_INDEX_URL": _extra_index(tmp_path / "ix"), "UV_NO_CACHE": "1"}
    home = tmp_path / "home"

    def run(*args, **env):
        return installkit.nlpsetup(kit, home, *args, **{**extra, **env})

    run.extra_index = extra["PIP_EXTRA_INDEX_URL"]
    return run, home, lambda **kw: _extra_index(tmp_path / "ix", **kw)


def _manifest(home: Path, env: str) -> dict:
    return json.loads((home / "envs" / env / "nlpsetup.json").read_text())


# --- 1. pip in every env, 7. plans show what the backend runs ------------------------------------


@needs_uv
def test_an_env_built_by_uv_has_its_own_pip(kit, tmp_path):
    home = tmp_path / "home"
    code, _, err = installkit.nlpsetup(kit, home, "install", "tinytool", "--name", "tt", "--backend", "uv")
    assert code == 0, err
    env = home / "envs" / "tt"
    code, out, _ = installkit.nlpsetup(kit, home, "run", "tt", "--", "python", "-m", "pip", "--version")
    assert code == 0 and str(env) in out  # `python -m pip` is the env's own pip
    code, out, _ = installkit.nlpsetup(kit, home, "run", "tt", "--", "pip", "--version")
    assert code == 0 and str(env) in out  # and so is `pip` on the activated PATH
    steps = [s["name"] for s in _manifest(home, "tt")["steps"]]
    assert steps[:2] == ["create", "seed"]


@needs_uv
def test_no_pip_leaves_pip_out_and_needs_uv(kit, tmp_path):
    home = tmp_path / "home"
    code, _, err = installkit.nlpsetup(kit, home, "install", "tinytool", "--name", "bare", "--no-pip")
    assert code == 0, err
    code, out, _ = installkit.nlpsetup(kit, home, "run", "bare", "--", "python", "-m", "pip", "--version")
    assert code != 0
    code, _, err = installkit.nlpsetup(kit, home, "install", "tinytool", "--name", "b2", "--no-pip",
                                       "--backend", "pip")
    assert code == 2 and "--no-pip needs the uv backend" in err and not (home / "envs" / "b2").exists()


@needs_uv
def test_plan_and_dry_run_show_the_chosen_backends_commands(kit, tmp_path):
    home = tmp_path / "home"
    code, out, err = installkit.nlpsetup(kit, home, "plan", "tinytool", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["backend"] == "uv"
    argvs = [s["argv"] for s in plan["steps"]]
    assert argvs[0][1] == "venv" and argvs[1][1:3] == ["pip", "install"] and argvs[1][-1].endswith(".whl")
    assert argvs[-1][1:3] == ["pip", "install"] and "--python" in argvs[-1]
    code, out, err = installkit.nlpsetup(kit, home, "install", "tinytool", "--dry-run", "--backend", "pip", "--json")
    assert code == 0, err
    [plan] = json.loads(out)
    assert plan["backend"] == "pip"
    assert plan["steps"][0]["argv"][1:3] == ["-m", "virtualenv"] and plan["steps"][-1]["argv"][1:4] == ["-m", "pip", "install"]
    code, out, _ = installkit.nlpsetup(kit, home, "plan", "tinytool")
    assert "backend  uv" in out and " venv " in out
    assert not (home / "envs").exists()  # nothing was built


@needs_uv
def test_what_the_plan_shows_is_what_install_runs(kit, tmp_path):
    home = tmp_path / "home"
    _, out, _ = installkit.nlpsetup(kit, home, "plan", "tinytool", "--json")
    shown = [s["argv"] for s in json.loads(out)["steps"]]
    assert installkit.nlpsetup(kit, home, "install", "tinytool")[0] == 0
    ran = [s["argv"] for s in _manifest(home, "tinytool")["steps"]]
    assert ran == shown


# --- 2. add --------------------------------------------------------------------------------------


@needs_uv
def test_add_installs_under_the_pins_records_it_and_lock_keeps_it(pinned):
    run, home, _ = pinned
    code, _, err = run("install", "pinned")
    assert code == 0, err
    code, out, err = run("add", "pinned", "goodadd", "-q")
    assert code == 0, err
    assert "goodadd (new) -> 1.0.0" in out and "tinydep (new) -> 1.0.0" in out  # the pin tinydep<2 held
    assert "smoke" not in err, err  # -q: the result only, no step lines
    m = _manifest(home, "pinned")
    assert m["additions"] == ["goodadd"] and m["distributions"]["tinydep"] == "1.0.0"
    code, out, _ = run("lock", "pinned")
    assert json.loads(out)["distributions"]["goodadd"] == "1.0.0"
    code, out, _ = run("verify", "pinned", "--json")
    [v] = json.loads(out)
    assert code == 0 and v["ok"] and not any(v["drift"].values())


@pytest.mark.parametrize("backend", [pytest.param("uv", marks=needs_uv), "pip"])
def test_add_that_breaks_a_pin_is_refused_naming_the_pin_and_why(pinned, backend):
    run, home, _ = pinned
    assert run("install", "pinned", "--backend", backend)[0] == 0
    before = _manifest(home, "pinned")
    code, _, err = run("add", "pinned", "tinydep==2.0.0")
    assert code == 1
    assert "tinydep<2" in err and "pinned's parser breaks on tinydep 2's API" in err
    assert "the previous env is back in place" in err
    after = _manifest(home, "pinned")
    assert after["distributions"] == before["distributions"] and "additions" not in after
    assert "tinydep" not in {k.lower() for k in _dists(home, "pinned")}


@needs_uv
def test_add_that_fails_the_smoke_checks_is_rolled_back(pinned):
    run, home, _ = pinned
    assert run("install", "pinned")[0] == 0
    module = next((home / "envs" / "pinned").glob("lib/python*/site-packages/uptool/__init__.py"))
    original = module.read_text()
    code, _, err = run("add", "pinned", "breaker")
    assert code == 1 and "smoke check failed" in err and "back in place" in err
    assert module.read_text() == original  # the snapshot's hard links were not written through
    assert "breaker" not in _dists(home, "pinned")
    assert run("verify", "pinned")[0] == 0
    assert not list((home / "envs").glob(".pinned*"))  # no backup or snapshot left behind


@needs_uv
@pytest.mark.parametrize("point", ["after:backup", "after:add", "before:commit"])
def test_a_kill_during_add_leaves_the_env_as_before(pinned, point):
    run, home, _ = pinned
    assert run("install", "pinned")[0] == 0
    before = _dists(home, "pinned")
    code, _, _ = run("add", "pinned", "goodadd", NLPSETUP_FAULT=f"kill@{point}")
    assert code == -9
    code, out, err = run("envs")  # the next command finds the journal and puts the env back
    assert code == 0 and "pinned" in out
    assert _dists(home, "pinned") == before and "additions" not in _manifest(home, "pinned")
    assert run("verify", "pinned")[0] == 0
    assert not list((home / "envs").glob(".pinned*"))


@needs_uv
@pytest.mark.parametrize("point", ["during:seed", "after:seed"])
def test_a_kill_while_uv_seeds_pip_leaves_no_half_env(kit, tmp_path, point):
    home = tmp_path / "home"
    code, _, _ = installkit.nlpsetup(kit, home, "install", "tinytool", "--backend", "uv", NLPSETUP_FAULT=f"kill@{point}")
    assert code == -9
    assert installkit.nlpsetup(kit, home, "envs")[0] == 0
    assert not (home / "envs" / "tinytool").exists()


def _wait_for(predicate, what: str, p, timeout: float = 120) -> None:
    """Poll until `predicate()` holds (never a fixed sleep: the machine may be loaded)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if p.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"never saw {what} (exit {p.poll()})")
        time.sleep(0.05)


def test_add_reads_the_manifest_under_the_lock_after_an_install_force_replaced_the_env(pinned, kit, tmp_path):
    """`add` waiting for the env's lock while `install --force` replaces the env must act on the new
    env's recipe (here its pin tinydep<2 refuses the addition), never on the pins read before."""
    import shutil
    import subprocess

    from filelock import FileLock

    run, home, _ = pinned
    (tmp_path / "recipes" / "loose.toml").write_text(
        PINNED.format(main="uptool>=1.0,<2").replace('"pinned"', '"loose"').split("[[variants.pins]]")[0]
        + '[variants.smoke]\ncode = "import uptool"\n')
    assert run("install", "pinned", "--name", "x", "--backend", "pip")[0] == 0
    newer = tmp_path / "x.new"  # the env an install --force will have put in place (built at envs/x)
    shutil.move(home / "envs" / "x", newer)
    assert run("install", "loose", "--name", "x", "--backend", "pip")[0] == 0  # no pins: tinydep 2 would go in

    env = installkit.environ(kit, home, NLPSETUP_RECIPES_PATH=os.pathsep.join([str(tmp_path / "recipes"),
                                                                               kit["recipes"]]),
                             PIP_EXTRA_INDEX_URL=run.extra_index)
    err_file = tmp_path / "add.err"
    with FileLock(str(home / "locks" / "x.lock")), open(err_file, "w") as err_out:
        p = subprocess.Popen([sys.executable, "-m", "nlpsetup", "add", "x", "tinydep==2.0.0"], env=env,
                             stdout=subprocess.PIPE, stderr=err_out, text=True)
        _wait_for(lambda: "waiting for it to finish" in err_file.read_text(), "add waiting for the lock", p)
        shutil.move(home / "envs" / "x", tmp_path / "x.old")  # what install --force does, under the lock
        shutil.move(newer, home / "envs" / "x")
    out, _ = p.communicate(timeout=300)
    err = err_file.read_text()
    assert p.returncode == 1, out + err
    assert "tinydep<2" in err and "pinned's parser breaks on tinydep 2's API" in err
    assert _manifest(home, "x")["tools"][0]["name"] == "pinned" and "tinydep" not in _dists(home, "x")


def test_upgrade_reads_the_manifest_under_the_lock_after_an_install_force_replaced_the_env(pinned, kit, tmp_path):
    """The same for `upgrade`: it waits while `loose` is the env's tool, then upgrades what the env holds
    when it gets the lock (`pinned`), and records that, never the tool it read before waiting."""
    import shutil
    import subprocess

    from filelock import FileLock

    run, home, rebuild = pinned
    (tmp_path / "recipes" / "loose.toml").write_text(
        PINNED.format(main="uptool>=1.0,<2").replace('"pinned"', '"loose"').split("[[variants.pins]]")[0]
        + '[variants.smoke]\ncode = "import uptool"\n')
    assert run("install", "pinned", "--name", "x", "--backend", "pip")[0] == 0
    newer = tmp_path / "x.new"
    shutil.move(home / "envs" / "x", newer)
    assert run("install", "loose", "--name", "x", "--backend", "pip")[0] == 0
    rebuild(uptool=("1.0.0", "1.1.0"))  # something to upgrade to
    env = installkit.environ(kit, home, NLPSETUP_RECIPES_PATH=os.pathsep.join([str(tmp_path / "recipes"),
                                                                               kit["recipes"]]),
                             PIP_EXTRA_INDEX_URL=run.extra_index, UV_NO_CACHE="1")
    err_file = tmp_path / "upgrade.err"
    with FileLock(str(home / "locks" / "x.lock")), open(err_file, "w") as err_out:
        p = subprocess.Popen([sys.executable, "-m", "nlpsetup", "upgrade", "x"], env=env,
                             stdout=subprocess.PIPE, stderr=err_out, text=True)
        _wait_for(lambda: "waiting for it to finish" in err_file.read_text(), "upgrade waiting for the lock", p)
        shutil.move(home / "envs" / "x", tmp_path / "x.old")
        shutil.move(newer, home / "envs" / "x")
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out + err_file.read_text()
    m = _manifest(home, "x")
    assert m["tools"][0]["name"] == "pinned" and _dists(home, "x")["uptool"] == "1.1.0", m["tools"]


def _dists(home: Path, env: str) -> dict:
    from nlpsetup.envs.env import Env

    return Env.at(home / "envs" / env).distributions() or {}


# --- 3. upgrade, envs --outdated -----------------------------------------------------------------


@needs_uv
def test_outdated_then_upgrade_keeps_additions_and_rolls_back_a_broken_release(pinned):
    run, home, rebuild = pinned
    assert run("install", "pinned")[0] == 0
    assert run("add", "pinned", "goodadd")[0] == 0
    code, out, _ = run("envs", "--outdated", "--json")
    assert code == 0 and json.loads(out) == []
    rebuild(uptool=("1.0.0", "1.1.0"), broken=("2.0.0",))  # 2.0.0 is outside the variant's <2
    code, out, _ = run("envs", "--outdated", "--json")
    [row] = json.loads(out)
    assert (row["env"], row["package"], row["installed"], row["newest"]) == ("pinned", "uptool", "1.0.0", "1.1.0")
    code, out, err = run("upgrade", "pinned")
    assert code == 0, err
    assert "uptool 1.0.0 -> 1.1.0" in out
    m = _manifest(home, "pinned")
    assert m["distributions"]["uptool"] == "1.1.0" and m["distributions"]["goodadd"] == "1.0.0"
    assert m["additions"] == ["goodadd"]
    rebuild(uptool=("1.0.0", "1.1.0"), broken=("1.2.0",))  # a new allowed release that fails its smoke check
    code, _, err = run("upgrade", "--all")
    assert code == 1 and "smoke check failed" in err and "back in place" in err
    assert _manifest(home, "pinned")["distributions"]["uptool"] == "1.1.0"
    assert _dists(home, "pinned")["uptool"] == "1.1.0"


def test_upgrade_all_and_verify_pass_over_odd_envs_with_a_note_and_finish_the_rest(pinned, kit, tmp_path):
    """A lock-built env, a user's folder, a folder with a name nlpsetup never gives and an env removed
    while the batch waited are each skipped with one line; the others are upgraded and verified; a
    summary ends it; the user's folder is never offered to a command that would delete it."""
    import subprocess

    from filelock import FileLock

    run, home, rebuild = pinned
    assert run("install", "pinned", "--backend", "pip")[0] == 0
    assert run("install", "tinytool", "--name", "t", "--backend", "pip")[0] == 0
    assert run("lock", "t", "-o", str(tmp_path / "t.lock.json"))[0] == 0
    assert run("install", "--from-lock", str(tmp_path / "t.lock.json"), "--name", "fromlock")[0] == 0
    (home / "envs" / "proj").mkdir()
    (home / "envs" / "proj" / "data.txt").write_text("mine")
    (home / "envs" / "odd name").mkdir()
    code, out, err = run("verify")
    assert code == 0, err
    assert "proj: skipped: not built by nlpsetup" in err and "odd name: skipped: not an env nlpsetup made" in err
    assert "pinned: ok" in out and "verify: 3 ok, 0 failed, 2 skipped" in out

    rebuild(uptool=("1.0.0", "1.1.0"))
    env = installkit.environ(kit, home, NLPSETUP_RECIPES_PATH=os.pathsep.join([str(tmp_path / "recipes"),
                                                                               kit["recipes"]]),
                             PIP_EXTRA_INDEX_URL=run.extra_index, UV_NO_CACHE="1")
    err_file = tmp_path / "upgrade.err"
    with FileLock(str(home / "locks" / "t.lock")), open(err_file, "w") as err_out:  # t comes last (sorted)
        p = subprocess.Popen([sys.executable, "-m", "nlpsetup", "upgrade", "--all"], env=env,
                             stdout=subprocess.PIPE, stderr=err_out, text=True)
        _wait_for(lambda: "env t is being changed" in err_file.read_text(), "upgrade --all waiting for t", p)
        (home / "envs" / "t").rename(tmp_path / "t.gone")  # removed meanwhile (as remove does, under the lock)
    out, _ = p.communicate(timeout=600)
    err = err_file.read_text()
    assert p.returncode == 0, out + err
    assert "uptool 1.0.0 -> 1.1.0" in out and _manifest(home, "pinned")["distributions"]["uptool"] == "1.1.0"
    for name in ("fromlock", "proj", "odd name", "t"):
        assert f"nlpsetup: skipped {name}: " in err, err
    assert "nlpsetup: upgrade: 1 upgraded, 0 already newest, 4 skipped, 0 failed" in out
    assert "--force" not in "".join(line for line in err.splitlines() if "proj" in line)
    assert (home / "envs" / "proj" / "data.txt").read_text() == "mine"
    code, _, err = run("upgrade", "proj")  # named alone: bad input, and still no deleting hint
    assert code == 2 and "not built by nlpsetup" in err and "--force" not in err


# --- 4. Jupyter kernels --------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_kernel_folder_follows_jupyter_cores_rules(platform, monkeypatch, tmp_path):
    from nlpsetup.envs import kernels

    home = Path(os.path.realpath(os.path.expanduser("~")))
    assert kernels.data_dir({"JUPYTER_DATA_DIR": str(tmp_path)}, platform) == tmp_path
    expected = {"linux": home / ".local/share/jupyter", "darwin": home / "Library/Jupyter",
                "win32": home / ".jupyter" / "data"}[platform]
    assert kernels.data_dir({}, platform) == expected
    assert kernels.data_dir({"XDG_DATA_HOME": "/x"}, "linux") == Path("/x/jupyter")
    assert kernels.data_dir({"APPDATA": "C:/Users/u/AppData/Roaming"}, "win32") == Path("C:/Users/u/AppData/Roaming/jupyter")
    if sys.platform.startswith(platform):  # the same answer as Jupyter's own code, on this OS
        from jupyter_core.paths import jupyter_data_dir

        for env in ({}, {"XDG_DATA_HOME": str(tmp_path / "xdg")}, {"JUPYTER_PLATFORM_DIRS": "1"}):
            for k in ("JUPYTER_DATA_DIR", "XDG_DATA_HOME", "JUPYTER_PLATFORM_DIRS"):
                monkeypatch.delenv(k, raising=False)
            for k, v in env.items():
                monkeypatch.setenv(k, v)
            assert kernels.data_dir() == Path(jupyter_data_dir())


def _local_ipykernel_index() -> str | None:
    """This machine's local mirror of PyPI, when it holds ipykernel and its binary dependencies for
    CPython 3.11 (a fast, offline kernel test); elsewhere the slow test from PyPI covers it."""
    root = Path("/opt/pypi/simple")
    try:
        ok = "cp311" in (root / "debugpy" / "index.html").read_text() and (root / "ipykernel").is_dir()
    except OSError:
        ok = False
    return root.as_uri() if ok else None


def _start_kernel_and_run(name: str, code: str) -> str:
    """Start kernel `name` as Jupyter does (found by name in the Jupyter data folder) and run code."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name=name, startup_timeout=120)
    try:
        out = []
        reply = kc.execute_interactive(code, timeout=120, output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(out)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@needs_uv
@pytest.mark.skipif(_local_ipykernel_index() is None, reason="no local index with ipykernel (test_kernel_from_pypi covers it)")
def test_kernel_registers_starts_and_runs_the_smoke_import(pinned, tmp_path, monkeypatch):
    run, home, _ = pinned
    jupyter = tmp_path / "jupyter"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(jupyter))
    code, _, err = run("install", "pinned", "--python", "3.11")  # the Python the local mirror has wheels for
    if code == 3:
        pytest.skip("no Python 3.11 here")
    assert code == 0, err
    code, out, err = run("kernel", "pinned", "--json", JUPYTER_DATA_DIR=str(jupyter),
                         PIP_EXTRA_INDEX_URL=f"{run.extra_index} {_local_ipykernel_index()}")
    assert code == 0, out + err
    doc = json.loads(out)
    spec_dir = jupyter / "kernels" / "nlpsetup-pinned"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert doc["display_name"] == spec["display_name"] == f"pinned (pinned 1.0.0, Python {_py(home)})"
    assert "ipykernel" in _manifest(home, "pinned")["additions"]
    printed = _start_kernel_and_run("nlpsetup-pinned", "import sys, uptool; print(uptool.VERSION, sys.prefix)")
    assert printed.split() == ["1.0.0", str(home / "envs" / "pinned")]
    # remove ENV takes its kernel; doctor reports one whose env is gone another way
    (jupyter / "kernels" / "nlpsetup-gone").mkdir(parents=True)
    (jupyter / "kernels" / "nlpsetup-gone" / "kernel.json").write_text(json.dumps(
        {**spec, "metadata": {"nlpsetup": {"env": "gone", "path": str(home / "envs" / "gone")}}}))
    code, out, _ = run("doctor", "--quick", "--json", JUPYTER_DATA_DIR=str(jupyter))
    [finding] = [f for f in json.loads(out)["checks"] if f["id"] == "env.kernel"]
    assert "nlpsetup-gone" in finding["message"] and finding["fix"] == "nlpsetup kernel gone --remove"
    assert run("remove", "pinned", "--yes", JUPYTER_DATA_DIR=str(jupyter))[0] == 0
    assert not spec_dir.exists()
    assert run("kernel", "gone", "--remove", JUPYTER_DATA_DIR=str(jupyter))[0] == 0
    assert not (jupyter / "kernels" / "nlpsetup-gone").exists()


def _py(home: Path) -> str:
    return ".".join(_manifest(home, "pinned")["interpreter"]["version"].split(".")[:2])


@pytest.mark.slow
def test_kernel_from_pypi_runs_the_recipes_smoke_import(tmp_path, monkeypatch):
    """The same from PyPI, as a user gets it: ipykernel and its dependencies for this Python."""
    import subprocess

    from test_real_installs import user_env

    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "six.toml").write_text(
        'name = "six"\nsummary = "s"\nhomepage = "h"\nstatus = "active"\n[[variants]]\npython = ">=3.9"\n'
        'packages = ["six"]\n[variants.smoke]\ncode = "import six; assert six.PY3"\n')
    jupyter = tmp_path / "jupyter"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(jupyter))
    env = {**user_env(tmp_path / "home"), "NLPSETUP_RECIPES_PATH": str(recipes), "JUPYTER_DATA_DIR": str(jupyter)}
    p = subprocess.run([sys.executable, "-m", "nlpsetup", "install", "six", "--kernel"], capture_output=True,
                       text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "kernel nlpsetup-six (six " in p.stdout
    printed = _start_kernel_and_run("nlpsetup-six", "import six; print(six.PY3)")
    assert printed.strip() == "True"


# --- 5. issue 20: envs reached through links, kernels of several homes ------------------------


@pytest.mark.parametrize("how", ["fail", "kill"])
def test_a_change_through_a_link_restores_the_target_and_keeps_the_link(pinned, tmp_path, how):
    run, home, _ = pinned
    assert run("install", "pinned", "--backend", "pip")[0] == 0
    target = tmp_path / "disk" / "pinned"
    target.parent.mkdir()
    os.rename(home / "envs" / "pinned", target)
    link = home / "envs" / "pinned"
    link.symlink_to(target)
    module = next(target.glob("lib/python*/site-packages/uptool/__init__.py"))
    original = module.read_text()
    if how == "fail":
        code, _, err = run("add", "pinned", "breaker")
        assert code == 1 and "back in place" in err, err
    else:
        assert run("add", "pinned", "goodadd", NLPSETUP_FAULT="kill@after:add")[0] == -9
        other = tmp_path / "home-b"  # another home sharing the env: it must not take or undo the backup
        (other / "envs").mkdir(parents=True)
        (other / "envs" / "shared").symlink_to(target)
        code, _, err = run("add", "shared", "goodadd", NLPSETUP_HOME=str(other))
        assert code == 2 and "another home" in err and (target.parent / ".pinned.nlpsetup-backup").is_dir(), err
        code, _, err = run("envs")  # the home that was killed finishes its own change
        assert code == 0 and "interrupted add" in err, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert module.read_text() == original
    assert not {"breaker", "goodadd"} & set(_dists(home, "pinned"))
    assert sorted(p.name for p in target.parent.iterdir()) == ["pinned"]  # no backup or snapshot beside it
    assert run("verify", "pinned")[0] == 0


def test_two_homes_sharing_an_env_through_links_exclude_each_other(tmp_path):
    from nlpsetup.envs.store import EnvBusy, EnvStore

    target = tmp_path / "disk" / "shared"
    target.mkdir(parents=True)
    a, b = EnvStore(tmp_path / "a"), EnvStore(tmp_path / "b")
    a.envs.mkdir(parents=True)
    b.envs.mkdir(parents=True)
    a.path("x").symlink_to(target)
    b.path("y").symlink_to(target)
    (a.envs / "own").mkdir()
    for env in (target, a.envs / "own"):  # envs nlpsetup built (a user's folder gets no lock file)
        (env / ".nlpsetup-env").write_text("{}")
    b.path("theirs").symlink_to(a.envs / "own")  # one home's own env, linked from another
    for (one, n1), (two, n2) in [((a, "x"), (b, "y")), ((a, "own"), (b, "theirs"))]:
        with one.lock(n1), pytest.raises(EnvBusy, match="another home"), two.lock(n2, wait=False):
            pass
        with two.lock(n2, wait=False):  # free again
            pass


def test_kernelspecs_of_two_homes_never_overwrite_or_remove_each_other(tmp_path, monkeypatch):
    from nlpsetup.envs import kernels

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))

    def env(home: str) -> tuple[Path, dict]:
        path = tmp_path / home / "envs" / "x"
        (path / "bin").mkdir(parents=True)
        return path, {"interpreter": {"env_python": str(path / "bin" / "python"), "version": "3.11.9"},
                      "tools": [{"name": "tinytool", "variant": "1"}]}

    (a, da), (b, db) = env("a"), env("b")
    fa, fb = kernels.write("x", a, da), kernels.write("x", b, db)
    assert fa.name == "nlpsetup-x" and fb.name.startswith("nlpsetup-x-") and fa != fb
    assert json.loads((fa / "kernel.json").read_text())["argv"][0] == str(a / "bin" / "python")
    assert json.loads((fb / "kernel.json").read_text())["argv"][0] == str(b / "bin" / "python")
    assert kernels.write("x", a, da) == fa and kernels.write("x", b, db) == fb  # each rewrites its own
    assert kernels.remove("x", a) == fa and fb.is_dir()
    assert kernels.remove("x", a) is None and kernels.remove("x", b) == fb
    # a folder of that name nlpsetup did not write: left alone
    theirs = tmp_path / "jupyter" / "kernels" / "nlpsetup-y"
    theirs.mkdir()
    (theirs / "kernel.json").write_text('{"argv": ["python"], "display_name": "mine"}')
    (c, dc) = env("c")
    assert kernels.write("y", c, dc) != theirs and kernels.remove("y", tmp_path / "z") is None
    assert json.loads((theirs / "kernel.json").read_text())["display_name"] == "mine"


def test_doctor_survives_a_kernelspec_whose_path_is_not_a_string(kit, cli, tmp_path):
    jupyter = tmp_path / "jupyter"
    (jupyter / "kernels" / "nlpsetup-odd").mkdir(parents=True)
    (jupyter / "kernels" / "nlpsetup-odd" / "kernel.json").write_text(json.dumps(
        {"argv": ["python"], "metadata": {"nlpsetup": {"env": "odd", "path": 5}}}))
    code, out, err = cli("doctor", "--quick", "--json", env={"JUPYTER_DATA_DIR": str(jupyter)})
    assert "checks" in json.loads(out), err
