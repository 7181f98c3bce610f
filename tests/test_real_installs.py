"""Real installs from PyPI (slow, network). `pytest --run-slow` runs them all; CI runs those
marked `ci`. They run as a user would: no global pip configuration, no local wheel folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def user_env(home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "NLPSETUP_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    # This machine's global pip configuration caps torch and adds local wheel folders; users have none.
    env.update({"PIP_CONFIG_FILE": os.devnull, "NLPSETUP_HOME": str(home), "NO_COLOR": "1"})
    if "PIP_CERT" in os.environ:
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    return env


def nlpsetup(home, *args, timeout=900):
    return subprocess.run([sys.executable, "-m", "nlpsetup", *args], capture_output=True, text=True,
                          env=user_env(home), timeout=timeout)


@pytest.mark.parametrize("backend", [pytest.param("pip", marks=pytest.mark.ci), pytest.param("uv", marks=pytest.mark.ci)])
def test_spacy_from_pypi_builds_and_passes_its_smoke_checks(tmp_path, backend):
    from nlpsetup.resolve.backends import find_uv

    if backend == "uv" and not find_uv():
        pytest.skip("uv is not installed")
    home = tmp_path / "home"
    p = nlpsetup(home, "install", "spacy", "--name", "sp", "--backend", backend)
    assert p.returncode == 0, p.stderr[-3000:]
    manifest = json.loads((home / "envs" / "sp" / "nlpsetup.json").read_text())
    assert manifest["backend"] == backend and manifest["distributions"]["spacy"].startswith("3.")
    assert manifest["smoke"] and all(s["passed"] for s in manifest["smoke"])
    run = nlpsetup(home, "run", "sp", "--", "python", "-c",
                   "import spacy; print(len(spacy.blank('en')('Hello big world')))")
    assert run.returncode == 0 and run.stdout.strip() == "3"
    bad = nlpsetup(home, "install", "spacy==3.8.99", "--name", "sp", "--force", "--backend", backend)
    assert bad.returncode == 1 and "the previous env is back in place" in bad.stderr
    assert nlpsetup(home, "verify", "sp").returncode == 0
    assert nlpsetup(home, "remove", "sp", "--yes").returncode == 0
    assert not (home / "envs" / "sp").exists()


PYENV = os.path.expanduser("~/.pyenv/versions")


@pytest.mark.parametrize(("version", "pip"), [("3.8", "25.0.1"), ("3.7", "24.0"), ("3.6", "21.3.1")])
def test_old_pythons_get_their_own_venv_and_the_last_pip_they_support(tmp_path, version, pip):
    home = tmp_path / "home"
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "six.toml").write_text(
        'name = "six"\nsummary = "s"\nhomepage = "h"\nstatus = "active"\n[[variants]]\npython = ">=3.6"\n'
        'packages = ["six"]\n[variants.smoke]\ncode = "import six; assert six.PY3"\n')
    env = {"NLPSETUP_RECIPES_PATH": str(recipes)}
    p = subprocess.run([sys.executable, "-m", "nlpsetup", "install", "six", "--python", version],
                       capture_output=True, text=True, env={**user_env(home), **env}, timeout=600)
    if p.returncode == 3:
        pytest.skip(f"no Python {version} here")
    assert p.returncode == 0, p.stderr[-2000:]
    manifest = json.loads((home / "envs" / "six" / "nlpsetup.json").read_text())
    assert manifest["interpreter"]["version"].startswith(version + ".")
    assert manifest["steps"][0]["argv"][1:3] == ["-m", "venv"]
    assert manifest["distributions"]["pip"] == pip
