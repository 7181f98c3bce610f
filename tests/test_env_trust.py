"""An env the user can see and trust (issue 21): no rebuild behind their back when the same tool
is named another way, additions kept by --force, one env per tool whatever the case typed,
`envs --outdated` from what the env holds, `reinstall` and repair hints that run, and `envs`
that shows versions, additions, kernels and the last verify.

Real nlpsetup commands against the kit's local index plus a small one of this file's own."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import installkit
import wheelhouse
from nlpsetup.envs.env import Env

TRUSTY = """\
name = "trusty"
summary = "a tool with an alias"
homepage = "https://example.org/trusty"
status = "active"
aliases = ["tr"]

[[variants]]
id = "1"
python = ">=3.9"
packages = ["uptool>=1.0,<2"]
[variants.smoke]
code = "import uptool; assert uptool.OK"
"""


def _index(root: Path, uptool=("1.0.0", "1.1.0")) -> str:
    build = root / "build"
    wheels = [wheelhouse.build_wheel(build, "uptool", v, files={"uptool/__init__.py": f"VERSION = {v!r}\nOK = True\n"})
              for v in uptool]
    wheels.append(wheelhouse.build_wheel(build, "extra1", "1.0.0", files={"extra1/__init__.py": "X = 1\n"}))
    return wheelhouse.write_simple_index(root / "extra", wheels)


@pytest.fixture
def trusty(kit, tmp_path):
    """(run, home): nlpsetup against the kit plus an index with uptool and extra1, and `trusty`."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "trusty.toml").write_text(TRUSTY)
    extra = {"NLPSETUP_RECIPES_PATH": os.pathsep.join([str(recipes), kit["recipes"]]),
             "PIP_EXTRA_INDEX_URL": _index(tmp_path / "ix"), "UV_NO_CACHE": "1",
             "JUPYTER_DATA_DIR": str(tmp_path / "jupyter")}
    home = tmp_path / "home"

    def run(*args, **env):
        return installkit.nlpsetup(kit, home, *args, **{**extra, **env})

    return run, home


def _manifest(home: Path, env: str) -> dict:
    return json.loads((home / "envs" / env / "nlpsetup.json").read_text())


def _built(home: Path, env: str) -> str:
    return _manifest(home, env)["created"] + _manifest(home, env)["log"]


# --- 1. what the env holds decides, not the words typed --------------------------------------------


def test_the_same_tool_named_another_way_is_already_installed(trusty, tmp_path):
    run, home = trusty
    code, _, err = run("install", "trusty", "--python", "3.11", "--name", "tr", "--backend", "pip")
    assert code == 0, err
    assert run("add", "tr", "extra1")[0] == 0
    built = _built(home, "tr")
    lock = tmp_path / "t.lock.json"
    assert run("lock", "tr", "-o", str(lock))[0] == 0
    # the recipe's alias, no --python (today's default is newer), the env's own lock without --name
    for args in (["tr"], ["trusty", "--name", "tr"], ["--from-lock", str(lock)]):
        code, out, err = run("install", *args, "--backend", "pip")
        assert code == 0 and "already installed" in out, (args, out, err)
        assert _built(home, "tr") == built, f"{args} rebuilt the env"
    assert sorted(p.name for p in (home / "envs").iterdir()) == ["tr"], "no second env of the same tool"
    m = _manifest(home, "tr")
    assert m["interpreter"]["version"].startswith("3.11.") and m["additions"] == ["extra1"]
    # another Python, or a lock of another set, is a replacement: refused, naming both and the command
    lock_data = json.loads(lock.read_text())
    del lock_data["distributions"]["extra1"]
    lock_data["hashes"].pop("extra1", None)
    lock.write_text(json.dumps(lock_data))
    for args in (["tr", "--python", "3.12"], ["--from-lock", str(lock)]):
        code, _, err = run("install", *args, "--backend", "pip")
        assert code == 2, (args, err)
        assert "already holds trusty 1 on Python 3.11" in err and "with additions extra1" in err, err
        assert f"nlpsetup install {' '.join(args)} --backend pip --name tr --force" in err, err
        assert _built(home, "tr") == built


# --- 2. --force keeps what the user added --------------------------------------------------------


def test_force_installs_the_additions_again_and_says_so(trusty):
    run, home = trusty
    assert run("install", "trusty", "--backend", "pip")[0] == 0
    assert run("add", "trusty", "extra1")[0] == 0
    code, out, err = run("install", "trusty", "--force", "--backend", "pip")
    assert code == 0, err
    assert "additions installed again: extra1" in out, out
    assert _manifest(home, "trusty")["additions"] == ["extra1"]
    assert (Env.at(home / "envs" / "trusty").distributions() or {}).get("extra1") == "1.0.0"
    # another tool in its place cannot take them: listed, not dropped in silence
    code, out, err = run("install", "tinytool", "--name", "trusty", "--force", "--backend", "pip")
    assert code == 0 and "not carried over" in err + out and "extra1" in err + out, (out, err)


# --- 3. one env per tool, whatever the case typed --------------------------------------------------


def test_a_tool_typed_in_another_case_is_the_same_env(trusty):
    run, home = trusty
    assert run("install", "trusty", "--backend", "pip")[0] == 0
    code, out, err = run("install", "Trusty", "--backend", "pip")
    assert code == 0 and "already installed" in out, (out, err)
    assert sorted(p.name for p in (home / "envs").iterdir()) == ["trusty"]
    code, _, err = run("install", "trusty", "--name", "TRUSTY", "--backend", "pip")
    assert code == 2 and "env trusty already exists" in err and "only in case" in err, err
    assert not (home / "envs" / "TRUSTY").exists()


# --- 4. envs --outdated reads the env ------------------------------------------------------------


def test_outdated_sees_a_version_installed_inside_the_env(trusty):
    run, home = trusty
    assert run("install", "trusty", "--backend", "pip")[0] == 0
    assert _manifest(home, "trusty")["distributions"]["uptool"] == "1.1.0"
    code, _, err = run("run", "trusty", "--", "python", "-m", "pip", "install", "-q", "uptool==1.0.0")
    assert code == 0, err
    code, out, _ = run("envs", "--outdated", "--json")
    [row] = json.loads(out)
    assert (row["env"], row["installed"], row["newest"]) == ("trusty", "1.0.0", "1.1.0")


# --- 5. repairs that run -----------------------------------------------------------------------


def _break(home: Path, env: str) -> None:
    [site] = Env.at(home / "envs" / env).site_packages()
    (site / "uptool" / "__init__.py").write_text("OK = False\n")


def test_a_failed_verify_shows_in_envs_and_reinstall_repairs_it_as_it_was(trusty):
    run, home = trusty
    assert run("install", "trusty", "--python", "3.11", "--backend", "pip")[0] == 0
    assert run("add", "trusty", "extra1")[0] == 0
    _break(home, "trusty")
    code, out, err = run("verify", "trusty")
    assert code == 1 and "repair it: nlpsetup reinstall trusty" in err, (out, err)
    code, out, _ = run("envs", "--json")
    [row] = json.loads(out)
    assert row["status"] == "failed" and row["last_verify"]["ok"] is False
    assert row["repair"] == "nlpsetup reinstall trusty"
    code, out, _ = run("envs")
    assert "FAILED" in out and "repair: nlpsetup reinstall trusty" in out, out
    code, out, err = run("reinstall", "trusty")
    assert code == 0 and "installed and verified" in out and "extra1" in out, (out, err)
    m = _manifest(home, "trusty")
    assert m["interpreter"]["version"].startswith("3.11.") and m["additions"] == ["extra1"]
    code, out, _ = run("envs", "--json")
    [row] = json.loads(out)
    assert row["status"] == "ok" and row["last_verify"]["ok"] is True and "repair" not in row


def test_a_lock_built_env_gets_a_hint_that_runs_and_is_rebuilt_from_its_lock(trusty, tmp_path):
    run, home = trusty
    assert run("install", "trusty", "--backend", "pip")[0] == 0
    lock = tmp_path / "t.lock.json"
    assert run("lock", "trusty", "-o", str(lock))[0] == 0
    code, out, err = run("install", "--from-lock", str(lock), "--name", "fromlock", "--backend", "pip")
    assert code == 0 and "trusty 1.1.0 (env fromlock) is installed" in out, (out, err)
    rows = {r["name"]: r for r in json.loads(run("envs", "--json")[1])}
    assert rows["fromlock"]["version"] == "1.1.0", "the version of the tool's own distribution (uptool), as from its recipe"
    assert "tool        trusty 1.1.0 (uptool), variant lock:1" in run("envs", "fromlock")[1]
    _break(home, "fromlock")
    code, out, _ = run("doctor", "--json", "--deep")
    [smoke] = [c for c in json.loads(out)["checks"] if c["id"] == "env.smoke" and c.get("env") == "fromlock"]
    assert smoke["status"] == "failure" and smoke["fix"].endswith("nlpsetup reinstall fromlock"), smoke
    lock.unlink()  # the env keeps its lock: the file it came from is not needed
    code, out, err = run("reinstall", "fromlock")
    assert code == 0, (out, err)
    m = _manifest(home, "fromlock")
    assert m["tools"][0]["variant"] == "lock:1" and m["distributions"]["uptool"] == "1.1.0"
    assert run("verify", "fromlock")[0] == 0


# --- 7. envs shows what each env holds ----------------------------------------------------------------


def test_envs_shows_versions_additions_kernel_and_one_env_in_full(trusty):
    run, home = trusty
    code, out, err = run("install", "trusty", "--backend", "pip")
    assert code == 0, err
    size_mb = f"{_manifest(home, 'trusty')['size_bytes'] / 1e6:,.0f} MB"
    assert f"nlpsetup: trusty 1.1.0 is installed and verified (pip), {size_mb}." in out, out
    assert run("add", "trusty", "extra1")[0] == 0
    code, out, _ = run("envs")
    header, line = out.splitlines()[:2]
    assert header.split() == ["ENV", "TOOL", "VERSION", "PYTHON", "ADDITIONS", "KERNEL", "VERIFIED", "STATUS", "SIZE"]
    assert line.split()[:5] == ["trusty", "trusty", "1.1.0", _manifest(home, "trusty")["interpreter"]["version"], "1"]
    assert header.index("VERSION") == line.index("1.1.0"), "columns line up with the header"
    code, out, _ = run("envs", "--json")
    [row] = json.loads(out)
    assert (row["tool"], row["version"], row["variant"], row["additions"], row["kernel"]) == \
        ("trusty", "1.1.0", "1", ["extra1"], False)
    assert row["tools"] == ["trusty 1"] and row["size_bytes"] > 0 and row["last_verify"]["ok"] is True
    code, out, _ = run("envs", "trusty")
    assert code == 0 and "tool        trusty 1.1.0 (uptool), variant 1" in out and "additions   extra1" in out, out
    assert "verified    ok" in out and "kernel      none" in out
    assert "deps as of  the day it was built (no cutoff)" in out, "trusty has no as_of"
    code, out, _ = run("envs", "nope")
    assert code == 2
