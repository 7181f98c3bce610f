"""The built wheel carries the recipes: installed in a fresh venv and run from another folder,
`nlpsetup list` shows every recipe of the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("dist")
    # Built without isolation (hatchling comes with the test extra), so no network is needed.
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
                   cwd=REPO, check=True, capture_output=True)
    (whl,) = out.glob("nlpsetup-*.whl")
    return whl


def test_wheel_ships_package_and_recipes_but_no_installer_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    recipes = {Path(n).stem for n in names if n.startswith("nlpsetup/data/recipes/") and n.endswith(".toml")}
    assert recipes == {p.stem for p in (REPO / "recipes").glob("*.toml")}
    assert "nlpsetup/data/cuda.toml" in names and "nlpsetup/cli/main.py" in names
    assert "nlpsetup/execution/harness.py" in names, "smoke's harness is read as text from the package"
    assert "nlpsetup/authoring/derivedchecks.py" in names, "discovery reads its checks as text from the package"
    assert not any(n.startswith("installer/") for n in names), "installer/ is the source root, not a package"


def test_installed_wheel_lists_every_recipe_from_another_directory(wheel, tmp_path):
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        text=True).strip())
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)  # a wheel's payload is its purelib tree
    # Dependencies (click, packaging, ...) come from this test run's environment, added as a plain
    # path: .pth files there (such as an editable nlpsetup) are not processed from a path entry.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import json, nlpsetup, sys; from nlpsetup.cli.main import main; "
            "sys.argv = ['nlpsetup', 'list', '--json']; print(nlpsetup.__file__, file=sys.stderr); main()")
    p = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=elsewhere, env=env)
    assert p.returncode == 0, p.stderr
    assert str(site) in p.stderr, "nlpsetup was not imported from the installed wheel"
    assert {r["name"] for r in json.loads(p.stdout)} == {f.stem for f in (REPO / "recipes").glob("*.toml")}
