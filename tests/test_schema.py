"""Editors check recipes with recipes/recipe.schema.json: it must be generated from the same tables
the loader validates with, so that the two accept and reject the same files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nlpsetup.base.errors import RecipeError
from nlpsetup.recipes import load as recipes
from nlpsetup.recipes.schema import json_schema

REPO = Path(__file__).resolve().parents[1]
SCHEMA_FILE = REPO / "recipes" / "recipe.schema.json"

MINIMAL = '''name = "demo"
summary = "A demo"
homepage = "https://example.org"
status = "active"
{top}
[[variants]]
python = ">=3.9"
packages = ["demo==1.0"]
{variant}
'''


def _doc(top: str = "", variant: str = "") -> str:
    return MINIMAL.format(top=top, variant=variant)


def test_shipped_schema_is_the_generated_one(run_cli):
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), \
        "regenerate it: nlpsetup recipe schema > recipes/recipe.schema.json"
    code, out, _ = run_cli("recipe", "schema")
    assert code == 0 and json.loads(out) == json_schema()


def _schema_accepts(text: str) -> bool:
    import jsonschema

    from nlpsetup.recipes.load import tomllib

    return jsonschema.Draft202012Validator(json_schema()).is_valid(tomllib.loads(text))


def _loader_accepts(text: str) -> bool:
    try:
        recipes.parse(text, "demo.toml", stem="demo")
    except RecipeError:
        return False
    return True


@pytest.mark.parametrize(("top", "variant", "valid"), [
    ("", "", True),
    ('[smoke]\nimports = ["demo"]\n', "", True),  # a recipe-level smoke
    ('[smoke]\nimports = ["demo"]\n', '[variants.smoke]\ntimeout = 30\n', True),
    ('pythn = "3.9"\n', "", False),  # a misspelt top-level key
    ("", 'pythn = ">=3.9"\n', False),  # a misspelt variant key
    ("", 'platforms = ["solaris"]\n', False),
    ("", 'arch = []\n', False),
    ("", 'prefer_binary = "yes"\n', False),
    ("", '[variants.smoke]\ntimeout = 0\n', False),
    ("", '[variants.smoke]\nimprts = ["x"]\n', False),
    ('[smoke]\ncommnds = [["x"]]\n', "", False),
    ("", '[[variants.pins]]\nreq = "numpy<2"\nwhy = "abi"\nhow = "x"\n', False),
    ("", '[[variants.pins]]\nwhy = "no req"\n', False),
    ("", 'id = "has space"\n', False),
    ("", 'env = { "1BAD" = "x" }\n', False),
    ("", 'env = { PIP_TARGET = "/tmp/x" }\n', False),  # would install outside the env
    ("", 'env = { http_proxy = "http://evil:3128" }\n', False),
    ("", '[variants.smoke]\nenv = { PYTHONPATH = "/tmp" }\n', False),
    ("", 'env = { HF_HUB_OFFLINE = "1" }\n', True),
    ("", 'direct_urls = { demo = "not on any index" }\n', True),
    ("", 'cuda_packages = { mxnet = { cu112 = "mxnet-cu112==1.9.1", gpu = "x" } }\n', False),
    ("", 'size_mb = -1\n', False),
    ("", 'glibc = "2.38"\n', True),
])
def test_schema_and_loader_agree(top, variant, valid):
    text = _doc(top, variant)
    assert _loader_accepts(text) is valid
    assert _schema_accepts(text) is valid


def test_every_shipped_recipe_passes_check_jsonschema_and_a_misspelt_key_fails(tmp_path):
    files = sorted(str(p) for p in (REPO / "recipes").glob("*.toml"))
    ok = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA_FILE), *files],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "demo.toml"
    bad.write_text(_doc(variant='pythn = ">=3.9"\n'))
    p = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA_FILE), str(bad)],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "pythn" in p.stdout + p.stderr


def test_variants_inherit_the_recipe_smoke_key_by_key():
    text = _doc('[smoke]\nimports = ["demo"]\ncode = "import demo"\ntimeout = 60\n',
                '[variants.smoke]\ntimeout = 30\n') + '\n[[variants]]\nid = "old"\npython = "<3.9"\npackages = ["demo<1"]\n'
    r = recipes.parse(text, "demo.toml", stem="demo")
    assert r.variants[0].smoke.imports == ("demo",) and r.variants[0].smoke.timeout == 30
    assert r.variants[1].smoke.code == "import demo" and r.variants[1].smoke.timeout == 60


def test_taplo_config_points_editors_at_the_schema():
    from nlpsetup.recipes.load import tomllib

    cfg = tomllib.loads((REPO / ".taplo.toml").read_text())
    (rule,) = cfg["rule"]
    assert rule["include"] == ["recipes/*.toml"] and (REPO / rule["schema"]["path"]) == SCHEMA_FILE


def test_shipped_recipes_point_at_no_file_a_user_lacks():
    for p in (REPO / "recipes").glob("*.toml"):
        text = p.read_text()
        assert "/work/" not in text and "ground-truth" not in text, p.name
