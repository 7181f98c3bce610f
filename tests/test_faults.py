"""Fault injection: after a SIGKILL or a Ctrl-C at every step boundary and in the middle of every
step, for a fresh install and for a reinstall over a working env, the env set is either as
before or as intended, never a mix, and the next command works."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import figures
import installkit

# Points in the order an install reaches them; the step points come from the plan itself (for the
# backend the installs below use), so a new step is covered without touching this file.
BOUNDARY = ["before:backup", "after:backup"]
TAIL = ["before:smoke", "before:manifest", "before:commit", "during:commit", "after:commit"]


def plan_points(kit, tmp_path) -> list[str]:
    p = subprocess.run([sys.executable, "-m", "nlpsetup", "plan", "nlpdemo", "--json", "--backend", "pip"], capture_output=True,
                       text=True, env=installkit.environ(kit, tmp_path / "plan-home"), check=True)
    points = []
    for step in json.loads(p.stdout)["steps"]:
        points += [f"before:{step['name']}"] + ([] if step["name"] == "create" else [f"during:{step['name']}"]) \
            + [f"after:{step['name']}"]
    return BOUNDARY + points + TAIL


def pytest_generate_tests(metafunc):
    if "point" in metafunc.fixturenames:
        import tempfile
        from pathlib import Path

        root = Path(tempfile.mkdtemp(prefix="nlpsetup-fault-points-"))
        metafunc.parametrize("point", plan_points(installkit.build(root / "kit"), root))


def nlp(kit, home, *args, fault=None):
    extra = {"NLPSETUP_FAULT": fault} if fault else {}
    return subprocess.run([sys.executable, "-m", "nlpsetup", *args], capture_output=True, text=True,
                          env=installkit.environ(kit, home, **extra), timeout=300)


def envs_state(home) -> dict:
    out = {}
    for d in sorted((home / "envs").iterdir()) if (home / "envs").exists() else []:
        m = d / "nlpsetup.json"
        out[d.name] = json.loads(m.read_text())["tools"][0]["name"] if m.exists() else "NO MANIFEST"
    return out


@pytest.mark.parametrize("action", ["kill", "int"])
@pytest.mark.parametrize("reinstall", [False, True], ids=["fresh", "reinstall"])
def test_a_fault_at_any_point_leaves_the_env_as_before_or_as_intended(kit, prebuilt, tmp_path, point, action,
                                                                     reinstall):
    home = prebuilt(("env", "pip")) if reinstall else tmp_path / "home"  # tinytool, as `install` leaves it
    before = envs_state(home)
    p = nlp(kit, home, "install", "nlpdemo", "--name", "env", "--backend", "pip", "--force", fault=f"{action}@{point}")
    figures.add("fault points exercised")
    if action == "kill":
        assert p.returncode == -9, p.stderr
    else:
        assert p.returncode == 130 and "Traceback" not in p.stderr, p.stderr
        assert "rolled back" in p.stderr or "had completed" in p.stderr
    after_cmd = nlp(kit, home, "envs", "--json")  # the next command recovers whatever was left
    assert after_cmd.returncode == 0, after_cmd.stderr
    state = envs_state(home)
    intended = {**before, "env": "nlpdemo"}
    assert state in (before, intended), f"a mix after {action}@{point}: {state}"
    if state != before or reinstall:
        lost = nlp(kit, home, "verify", "env").returncode != 0
        figures.add("envs lost", int(lost))
        assert not lost, "the env left in place must work"
    assert not [d.name for d in (home / "envs").iterdir() if d.name.startswith(".")] if (home / "envs").exists() else True
    assert not list((home / "journal").glob("*.json")) if (home / "journal").exists() else True
