"""No false yes: every plan, on every simulated target and Python 3.8-3.14, has binary wheels for the
heavy packages it installs (torch, numpy, pandas, tensorflow, mxnet, bitsandbytes, ...), as recorded
from PyPI in tests/data/wheels.json (tools/record_wheels.py writes it; its `recorded` date says when).

pip with --only-binary=:all: --platform/--python-version answers the same question from the index;
this test answers it offline, so a recipe whose `targets` or Python range promise more than its
wheels ship fails here, naming the package and target. A second test holds plans to pip's own
verdicts, recorded per cell in tests/data/pip_binary_check.json by tools/pip_compare.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

import wheeldata
from nlpsetup.base import paths
from nlpsetup.facts import host as host_mod
from nlpsetup.facts.pythons import PythonRequest
from nlpsetup.recipes import load as recipes
from nlpsetup.resolve import model as resolve
from nlpsetup.resolve import resolve as resolver

BOOK = recipes.load_book([paths.builtin_recipes_dir()])


def plan_for(recipe, os_name: str, arch: str, python: str):
    host = host_mod.simulated_host(os_name, arch=arch)
    req = resolve.Request(tool=resolve.ToolRequest(recipe.name), python=PythonRequest(raw=python, version=python))
    return resolver.resolve(recipe, host, req, envs_root=Path("envs"))


@pytest.mark.parametrize("name", sorted(BOOK.recipes))
def test_every_plan_has_binary_wheels_for_its_heavy_packages(name):
    recipe = BOOK.recipes[name]
    false_yes = []
    for os_name, arch in wheeldata.TARGETS:
        for python in wheeldata.PYTHONS:
            result = plan_for(recipe, os_name, arch, python)
            if isinstance(result, resolve.Plan):
                for problem in wheeldata.problems(result, os_name, arch, python):
                    false_yes.append(f"{os_name}-{arch} py{python} {result.variant.id}: {problem}")
    assert not false_yes, "plans that pip cannot install from wheels:\n" + "\n".join(false_yes)


PIP_CHECK = json.loads((Path(__file__).with_name("data") / "pip_binary_check.json").read_text())


@pytest.mark.parametrize("name", sorted(BOOK.recipes))
def test_no_plan_says_yes_where_pip_found_no_binary_install(name):
    """pip's own answer, recorded per cell and variant by tools/pip_compare.py (whole dependency
    trees, not just the heavy packages above): where it found no install from wheels, a plan may
    only offer that variant if it says what it compiles ("needs cc ...: ... gluonnlp ...")."""
    recipe = BOOK.recipes[name]
    false_yes = []
    for os_name, arch in wheeldata.TARGETS:
        for python in wheeldata.PYTHONS:
            result = plan_for(recipe, os_name, arch, python)
            if not isinstance(result, resolve.Plan):
                continue
            pip_arch = "aarch64" if (os_name, arch) == ("linux", "arm64") else arch
            verdict = PIP_CHECK["cells"].get(f"{name}|{os_name}|{pip_arch}|{python}", {}).get(result.variant.id)
            if not verdict or verdict["pip"] == "yes":
                continue
            needs = [w.lower() for w in result.warnings if w.startswith("needs ")]
            said = verdict["needs_build"] and all(any(n in w for w in needs) for n in verdict["needs_build"])
            if not said:
                false_yes.append(f"{os_name}-{arch} py{python} {result.variant.id}: {verdict['error']}")
    assert not false_yes, (f"plans that pip found no binary install for (recorded {PIP_CHECK['recorded']}; "
                           "re-run tools/pip_compare.py if the recipe changed its packages):\n" + "\n".join(false_yes))


def test_the_record_catches_what_pypi_lacks():
    # Facts the record must hold for the test above to mean anything (PyPI, checked by hand):
    # the last macOS x86_64 torch is 2.2.2, with no cp313 wheel; bitsandbytes 0.45.0 has no aarch64 wheel.
    assert str(wheeldata.newest_with_wheel("torch", SpecifierSet(""), "macos", "x86_64", "3.12")) == "2.2.2"
    assert wheeldata.newest_with_wheel("torch", SpecifierSet(""), "macos", "x86_64", "3.13") is None
    assert wheeldata.newest_with_wheel("bitsandbytes", SpecifierSet("==0.45.0"), "linux", "arm64", "3.12") is None
    assert wheeldata.newest_with_wheel("bitsandbytes", SpecifierSet("==0.45.0"), "linux", "x86_64", "3.12")


def test_target_tags_follow_pip():
    linux = wheeldata.supported("linux", "arm64", "3.12")
    assert wheeldata.has_wheel(["x-1-cp312-cp312-manylinux_2_28_aarch64.whl"], linux)
    assert wheeldata.has_wheel(["x-1-cp38-abi3-manylinux2014_aarch64.whl"], linux)
    assert not wheeldata.has_wheel(["x-1-cp312-cp312-manylinux_2_28_x86_64.whl"], linux)
    assert not wheeldata.has_wheel(["x-1-cp311-cp311-manylinux_2_28_aarch64.whl"], linux)
    mac = wheeldata.supported("macos", "x86_64", "3.11")
    assert wheeldata.has_wheel(["x-1-cp311-cp311-macosx_10_9_x86_64.whl"], mac)
    assert wheeldata.has_wheel(["x-1-cp311-cp311-macosx_10_9_universal2.whl"], mac)
    assert not wheeldata.has_wheel(["x-1-cp311-cp311-macosx_11_0_arm64.whl"], mac)
