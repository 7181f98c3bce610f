"""Dependencies as of a date (issue 23), installed for real from a local PEP 691 index over HTTP whose
files carry PEP 700 upload times: agedlib 2.0.0, uploaded in 2023, drops the function agedtool 1.0.0
(2021) calls. The recipe's as_of (2021-12-31) keeps agedlib 1.0.0 with either backend and on an old
Python; --as-of latest takes 2.0.0, fails the smoke check and rolls back."""

from __future__ import annotations

import json

import pytest

import installkit
import wheelhouse
from nlpsetup.resolve import backends

PY38 = installkit.PY38
needs_uv = pytest.mark.skipif(backends.find_uv() is None, reason="uv not installed")

RECIPE = """\
name = "agedtool"
summary = "a tool whose dependency broke after its release"
homepage = "https://example.org/agedtool"
status = "unmaintained"
as_of = "2021-12-31"  # agedlib 2.0.0 (2023) drops greet()
{extra}
[[variants]]
id = "1.0.0"
python = ">=3.8"
packages = ["{package}"]
[variants.smoke]
code = "import agedtool; assert agedtool.hello() == 'hello'"
timeout = 60
"""


@pytest.fixture(scope="module")
def aged(tmp_path_factory):
    """The aged index (with and without upload times) and a recipe folder for agedtool."""
    root = tmp_path_factory.mktemp("aged")
    dists = installkit.aged_dists(root / "build")
    recipes = root / "recipes"
    recipes.mkdir()
    (recipes / "agedtool.toml").write_text(RECIPE.format(extra="", package="agedtool==1.0.0"))
    # builttool is an sdist built against agedlib (as a compiled package is against numpy)
    dists[wheelhouse.build_sdist_built_against(root / "build", "builttool", "1.0.0", "agedlib")] = "2021-07-01T09:30:00Z"
    (recipes / "builttool.toml").write_text(RECIPE.replace("agedtool", "builttool").replace(
        "import builttool; assert builttool.hello() == 'hello'",
        "import agedlib, builttool; assert builttool.BUILT_WITH == agedlib.VERSION, builttool.BUILT_WITH").format(
        extra="", package="builttool==1.0.0"))
    timed, untimed = installkit.JsonIndex(root / "timed", dists), installkit.JsonIndex(root / "untimed", dists, False)
    yield {"url": timed.url, "untimed": untimed.url, "recipes": str(recipes), "root": root}
    timed.close()
    untimed.close()


def _run(cli, aged, *args, index=None):
    return cli(*args, env={"PIP_INDEX_URL": index or aged["url"], "NLPSETUP_RECIPES_PATH": aged["recipes"]})


def _manifest(home, env="agedtool") -> dict:
    return json.loads((home / "envs" / env / "nlpsetup.json").read_text())


@pytest.mark.parametrize("backend", ["pip", pytest.param("uv", marks=needs_uv)])
def test_as_of_installs_the_dependency_of_its_date_and_latest_breaks_and_rolls_back(cli, home, aged, backend):
    code, out, err = _run(cli, aged, "install", "agedtool", "--backend", backend)
    assert code == 0, err
    m = _manifest(home)
    assert m["distributions"]["agedlib"] == "1.0.0"
    assert m["as_of"]["date"] == "2021-12-31" and m["as_of"]["source"] == "recipe"
    code, out, _ = _run(cli, aged, "envs", "agedtool")
    assert "deps as of  2021-12-31" in out, "envs ENV shows the date of the dependencies"
    code, out, err = _run(cli, aged, "install", "agedtool", "--name", "fresh", "--backend", backend,
                          "--as-of", "latest")
    assert code == 1, out + err
    assert "smoke check failed" in out + err and not (home / "envs" / "fresh").exists()


@pytest.mark.skipif(not PY38.exists(), reason="needs pyenv's Python 3.8.18")
@pytest.mark.parametrize("backend", ["pip", pytest.param("uv", marks=needs_uv)])
def test_as_of_holds_on_python_38_whose_pip_cannot_apply_it(cli, home, aged, backend):
    code, out, err = _run(cli, aged, "plan", "agedtool", "--python", str(PY38), "--backend", backend)
    assert code == 0 and "resolve as of 2021-12-31 with uv" in out, out + err
    # An sdist in that list is built in an isolated env whose setuptools/wheel pip < 26 would take from
    # today's index: they are resolved as of the date too and reach the builds as constraints.
    assert "resolve the build tools (setuptools, wheel) as of 2021-12-31" in out, out
    code, out, err = _run(cli, aged, "plan", "agedtool", "--python", str(PY38), "--backend", backend, "--json")
    (install,) = [s for s in json.loads(out)["steps"] if s["name"] == "install"]
    assert install["env"]["PIP_CONSTRAINT"].endswith("nlpsetup-build-constraints.txt"), install
    code, out, err = _run(cli, aged, "install", "agedtool", "--python", str(PY38), "--backend", backend)
    assert code == 0, out + err
    m = _manifest(home)
    assert m["interpreter"]["version"].startswith("3.8") and m["distributions"]["agedlib"] == "1.0.0"


@pytest.mark.skipif(not PY38.exists(), reason="needs pyenv's Python 3.8.18")
@pytest.mark.parametrize("backend", ["pip", pytest.param("uv", marks=needs_uv)])
def test_an_sdist_is_built_against_the_versions_the_env_runs_with(cli, home, aged, backend):
    # pip < 26 cannot cut its isolated build env by date: without the env's own versions as build
    # constraints, builttool is built against agedlib 2.0.0 and runs with 1.0.0 (pyemd against numpy)
    code, out, err = _run(cli, aged, "install", "builttool", "--python", str(PY38), "--backend", backend)
    assert code == 0, out + err
    assert _manifest(home, "builttool")["distributions"]["agedlib"] == "1.0.0"
    built = (home / "envs" / "builttool" / "nlpsetup-build-constraints.txt").read_text(encoding="utf-8")
    assert "agedlib==1.0.0" in built.splitlines(), built  # (this index has no setuptools to bound)


def test_an_index_without_upload_times_is_a_one_line_error(cli, home, aged):
    code, out, err = _run(cli, aged, "install", "agedtool", index=aged["untimed"])
    assert code == 2, out + err
    assert "cannot apply as_of 2021-12-31" in err and "PEP 700" in err and "--as-of latest" in err
    assert "Traceback" not in err and not (home / "envs" / "agedtool").exists()
    code, _, err = _run(cli, aged, "install", "agedtool", "--as-of", "latest", "--name", "x", index=aged["untimed"])
    assert "cannot apply as_of" not in err  # lifted: the index is asked for nothing it lacks


def test_exempt_package_may_be_newer_while_its_dependencies_keep_the_date(cli, home, aged, tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "agedtool.toml").write_text(RECIPE.format(extra='as_of_exempt = ["agedtool"]',
                                                         package="agedtool==1.1.0"))
    code, out, err = cli("install", "agedtool", "--backend", "pip",
                         env={"PIP_INDEX_URL": aged["url"], "NLPSETUP_RECIPES_PATH": str(recipes)})
    assert code == 0, out + err
    assert _manifest(home)["distributions"] == {**_manifest(home)["distributions"], "agedtool": "1.1.0",
                                                "agedlib": "1.0.0"}


def test_plan_show_and_json_say_the_date_and_who_chose_it(cli, aged):
    code, out, err = _run(cli, aged, "plan", "agedtool")
    assert code == 0 and "dependencies as of 2021-12-31 (recipe)" in out, err
    code, out, _ = _run(cli, aged, "plan", "agedtool", "--as-of", "2022-06-30", "--json")
    assert json.loads(out)["as_of"]["date"] == "2022-06-30" and json.loads(out)["as_of"]["source"] == "--as-of"
    code, out, _ = _run(cli, aged, "plan", "agedtool", "--as-of", "latest", "--json")
    assert json.loads(out)["as_of"] is None
    code, out, _ = _run(cli, aged, "show", "agedtool")
    assert "as of      2021-12-31" in out
    code, _, err = _run(cli, aged, "plan", "agedtool", "--as-of", "31/12/2021")
    assert code == 2 and "is not a date" in err


def test_lock_and_pylock_export_carry_the_date_and_upload_times(cli, home, aged, tmp_path):
    assert _run(cli, aged, "install", "agedtool", "--backend", "pip")[0] == 0
    code, out, err = _run(cli, aged, "lock", "agedtool")
    assert code == 0 and json.loads(out)["as_of"]["date"] == "2021-12-31", err
    code, _, err = _run(cli, aged, "lock", "agedtool", "--as-of", "2021-06-30")
    assert code == 1 and "agedtool: uploaded 2021-07-01, after 2021-06-30" in err, err
    code, out, err = _run(cli, aged, "lock", "agedtool", "--as-of", "2022-01-31")
    assert code == 0 and json.loads(out)["as_of"]["date"] == "2022-01-31", err
    code, out, err = _run(cli, aged, "export", "agedtool")
    assert code == 0, err
    assert "\"upload-time\" = 2021-06-01T12:00:00Z" in out  # agedlib 1.0.0's, a TOML datetime
    import tomllib

    assert str(tomllib.loads(out)["tool"]["nlpsetup"]["as_of"]["date"]) == "2021-12-31"


def test_recipe_check_warns_of_a_python_released_after_the_date(run_cli, tmp_path):
    f = tmp_path / "agedtool.toml"
    f.write_text(RECIPE.format(extra="", package="agedtool==1.0.0"))
    code, out, err = run_cli("recipe", "check", str(f))
    assert code == 0, err
    assert "admits 3.11, 3.12" in err and "released after its as_of 2021-12-31" in err
    f.write_text(RECIPE.format(extra="", package="agedtool==1.0.0").replace('python = ">=3.8"', 'python = "3.8.*"'))
    assert "warning" not in run_cli("recipe", "check", str(f))[2]
    f.write_text(RECIPE.format(extra="", package="agedtool==1.0.0").replace("2021-12-31", "2021-13-01"))
    code, _, err = run_cli("recipe", "check", str(f))
    assert code == 2 and "is not a date" in err


def test_recipe_check_warns_of_an_unmaintained_variant_without_a_date_and_every_shipped_one_has_one(run_cli, tmp_path):
    """A variant of an unmaintained or archived tool without as_of resolves against each day's index
    and rots: `recipe check` says so, and no shipped recipe does it."""
    from nlpsetup.base.paths import builtin_recipes_dir

    shipped = builtin_recipes_dir() / "lexnlp.toml"
    f = tmp_path / "lexnlp.toml"
    f.write_text("\n".join(ln for ln in shipped.read_text().splitlines() if not ln.startswith("as_of")) + "\n")
    code, _, err = run_cli("recipe", "check", str(f))
    assert code == 0 and "the tool is unmaintained but the variant has no as_of" in err, err
    code, out, err = run_cli("recipe", "check", *map(str, sorted(builtin_recipes_dir().glob("*.toml"))))
    assert code == 0 and "warning" not in err, err


def test_a_plan_on_a_python_newer_than_the_date_says_it_compiles_from_sdists(cli, aged):
    code, out, err = _run(cli, aged, "plan", "agedtool", "--python", "3.13", "--platform", "linux")
    assert code == 0, err
    assert "Python 3.13 was released on 2024-10-07, after the cutoff 2021-12-31" in out and "sdist" in out





def test_upgrade_stays_inside_the_envs_date_unless_told(cli, home, aged):
    assert _run(cli, aged, "install", "agedtool", "--backend", "pip")[0] == 0
    code, out, err = _run(cli, aged, "upgrade", "agedtool")
    assert code == 0, out + err
    assert _manifest(home)["distributions"]["agedlib"] == "1.0.0" and _manifest(home)["as_of"]["source"] == "recipe"
    code, out, err = _run(cli, aged, "upgrade", "agedtool", "--as-of", "latest")
    assert code == 0 and _manifest(home)["as_of"] is None, out + err  # lifted, and recorded so


def test_bump_date_writes_a_date_whose_build_passes_and_names_what_broke_otherwise(cli, aged, tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    f = recipes / "agedtool.toml"
    original = RECIPE.format(extra="", package="agedtool==1.0.0").replace(
        'id = "1.0.0"\n', 'id = "1.0.0"\nas_of = "2021-12-31"   # keep: why this date\n')
    f.write_text(original)
    env = {"PIP_INDEX_URL": aged["url"], "NLPSETUP_RECIPES_PATH": str(recipes)}
    code, out, err = cli("recipe", "bump-date", "agedtool", "--to", "2024-01-01", "--backend", "pip", env=env)
    assert code == 1, out + err
    assert "smoke check failed" in err and "agedlib 1.0.0 -> 2.0.0" in err
    assert f.read_text() == original  # untouched
    code, out, err = cli("recipe", "bump-date", "agedtool", "--to", "2022-06-30", "--backend", "pip", env=env)
    assert code == 0, out + err
    assert f.read_text() == original.replace('as_of = "2021-12-31"   # keep', 'as_of = "2022-06-30"   # keep')


def test_bundle_applies_the_date_with_its_own_pip_or_says_it_cannot(cli, aged, tmp_path):
    from importlib import metadata

    from nlpsetup.resolve import cutoff

    out = tmp_path / "bundle"
    code, stdout, err = _run(cli, aged, "bundle", "agedtool", "-o", str(out))
    if cutoff.pip_supports(metadata.version("pip")):
        assert code == 0, err
        assert (out / "wheels" / "agedlib-1.0.0-py3-none-any.whl").exists() or \
            any(p.name.startswith("agedlib-1.0.0") for p in out.rglob("*.whl"))
    else:  # never a bundle of today's releases under a recipe that asks for 2021's
        assert code == 3 and "cannot apply as_of 2021-12-31" in err and "pip>=26" in err, err
        assert not out.exists()
    code, _, err = _run(cli, aged, "bundle", "agedtool", "-o", str(tmp_path / "latest"), "--as-of", "latest")
    assert code == 0, err


@pytest.mark.parametrize("backend", ["pip", pytest.param("uv", marks=needs_uv)])
def test_the_pytorch_family_comes_alone_from_its_index_and_the_cutoff_step_keeps_it(cli, home, aged, tmp_path, backend):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "agedtool.toml").write_text(RECIPE.format(extra="", package="agedtool==1.0.0").replace(
        'packages = ["agedtool==1.0.0"]', 'packages = ["agedtool==1.0.0"]\nframework = { torch = ">=2.0" }').replace(
        "import agedtool;", "import torch, agedtool;"))
    env = {"PIP_INDEX_URL": aged["url"], "NLPSETUP_RECIPES_PATH": str(recipes)}
    code, out, _ = cli("plan", "agedtool", "--json", "--backend", backend, env=env)
    steps = {s["name"]: s["argv"] for s in json.loads(out)["steps"]}
    assert "--no-deps" in steps["framework"] and "torch>=2.0" in steps["install"]
    code, out, err = cli("install", "agedtool", "--backend", backend, env=env)
    assert code == 0, out + err
    dists = _manifest(home)["distributions"]
    assert dists["torch"] == wheelhouse.TORCH_CPU_VERSION and dists["agedlib"] == "1.0.0"


def test_a_cutoff_before_2019_keeps_the_build_tools_a_legacy_sdist_needs():
    # uv builds a setup.py-only sdist with setuptools>=40.8.0 (2019): under a cutoff of 2016 nothing
    # satisfies that, so the build tools stay at the floor and everything else keeps the date
    from nlpsetup.resolve import cutoff

    old = backends.translate(("/e/bin/python", "-m", "pip", "install", cutoff.PIP_FLAG, "2016-09-02T00:00:00Z",
                              "polyglot==16.7.4"), "uv", "/uv", "/e/bin/python")
    assert old[old.index("--exclude-newer") + 1] == "2016-09-02T00:00:00Z"
    assert "setuptools=2019-03-01T00:00:00Z" in old and "wheel=2019-03-01T00:00:00Z" in old
    new = backends.translate(("/e/bin/python", "-m", "pip", "install", cutoff.PIP_FLAG, "2021-07-01T00:00:00Z",
                              "agedtool==1.0.0"), "uv", "/uv", "/e/bin/python")
    assert not any(a.startswith("setuptools=") for a in new), new
