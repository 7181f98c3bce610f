"""`recipe test`, `recipe outdated` and the verification table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import installkit

REPO = Path(__file__).resolve().parents[1]


cli = installkit.nlpsetup


def test_recipe_test_builds_records_and_removes(kit, tmp_path):
    home = tmp_path / "home"
    record, table = tmp_path / "r.json", tmp_path / "r.md"
    code, out, err = cli(kit, home, "recipe", "test", "tinytool", "brokenimport", "--record", str(record),
                         "--markdown", str(table), "--backend", "pip")
    assert code == 1, err  # brokenimport fails its smoke check
    rows = {r["tool"]: r for r in json.loads(record.read_text())}
    assert rows["tinytool"]["result"] == "pass" and rows["tinytool"]["size_mb"] and rows["tinytool"]["seconds"]
    assert rows["brokenimport"]["result"] == "fail" and "log:" in rows["brokenimport"]["detail"]
    assert "| tinytool | 1 |" in table.read_text()
    assert not (home / "envs").exists() or not list((home / "envs").iterdir()), "recipe test must not leave envs"
    # a later run replaces its own rows and keeps the others
    code, _, _ = cli(kit, home, "recipe", "test", "tinytool", "--record", str(record), "--plan-only")
    rows = json.loads(record.read_text())
    assert sorted(r["tool"] for r in rows) == ["brokenimport", "tinytool"]


def test_recipe_test_records_refusals(kit, tmp_path):
    code, out, _ = cli(kit, tmp_path / "h", "recipe", "test", "spacy", "--python", "2.7", "--json", "--plan-only",
                       NLPSETUP_RECIPES_PATH="")
    rows = json.loads(out)
    # the refusal is recorded, and a run that could build nothing is not a pass (exit 3: the host)
    assert code == 3 and rows[0]["result"] == "refused" and "2.7" in rows[0]["detail"]
    code, _, err = cli(kit, tmp_path / "h", "recipe", "test", "spacy", "--python", "2.7", NLPSETUP_RECIPES_PATH="")
    assert code == 3 and "nothing was built" in err


def test_outdated_reads_versions_and_wheel_metadata_from_the_index(kit, tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "nlpdemo.toml").write_text(installkit.RECIPE.format(
        name="nlpdemo", id="0.9", packages='"nlpdemo==0.9.0"', extra="", smoke='imports = ["nlpdemo"]', timeout=60))
    code, out, err = cli(kit, tmp_path / "h", "recipe", "outdated", "nlpdemo", "tinytool", "--json",
                         NLPSETUP_RECIPES_PATH=str(recipes) + ":" + kit["recipes"])
    assert code == 0, err
    rows = {r["tool"]: r for r in json.loads(out)}
    demo = rows["nlpdemo"]
    assert demo["newest"] == "1.0.0" and demo["newest_known"] == "0.9.0" and demo["covered"] is False
    assert demo["requires_dist"] == ["torch>=2.0"] and demo["metadata_from"] == "wheel METADATA"
    assert rows["tinytool"]["covered"] is True and rows["tinytool"]["newest"] == "2.0.0"


def test_outdated_says_when_the_index_cannot_be_reached(kit, tmp_path):
    code, out, _ = cli(kit, tmp_path / "h", "recipe", "outdated", "tinytool", "--index-url",
                       "http://127.0.0.1:9/simple")
    assert code == 1 and "cannot check" in out  # a check that could not run is a failure


def test_every_recipe_has_a_row_in_the_verification_table():
    table = (REPO / "docs" / "recipes.md").read_text()
    for recipe in sorted((REPO / "recipes").glob("*.toml")):
        assert f"| {recipe.stem} |" in table, f"{recipe.stem} has no row in docs/recipes.md"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_outdated_exits_1_when_any_check_fails(kit, tmp_path):
    """A page that is not an index, a project with no releases, a wheel without METADATA: each
    package that could not be checked is a row with its error, and the run exits 1."""
    index = tmp_path / "index"
    (index / "tinytool").mkdir(parents=True)
    (index / "tinytool" / "index.html").write_text('<a href="tinytool-9.0-py3-none-any.whl">x</a>')
    (index / "tinytool-9.0-py3-none-any.whl").write_bytes(b"not a zip")
    (index / "nlpdemo").mkdir()
    (index / "nlpdemo" / "index.html").write_text("<html>no links</html>")
    os.mkfifo(index / "brokenimport")
    code, out, err = cli(kit, tmp_path / "h", "recipe", "outdated", "tinytool", "nlpdemo", "brokenimport", "--json",
                         "--index-url", index.as_uri())
    rows = {r["tool"]: r for r in json.loads(out)}
    assert code == 1 and "Traceback" not in err, err
    assert "error" in rows["tinytool"] and "no releases" in rows["nlpdemo"]["error"]
    assert "FIFO" in rows["brokenimport"]["error"]  # refused, not read forever


def test_a_record_file_that_is_not_one_is_refused_before_any_build_and_kept(kit, tmp_path):
    record = tmp_path / "mine.json"
    for content in ('{"my": "notes"}', "not json", '[{"no": "tool"}]'):
        record.write_text(content)
        code, out, err = cli(kit, tmp_path / "h", "recipe", "test", "tinytool", "--record", str(record))
        assert code == 2 and f"--record {record}" in err and "Traceback" not in err, err
        assert "== tinytool" not in err and record.read_text() == content  # nothing ran, nothing lost
