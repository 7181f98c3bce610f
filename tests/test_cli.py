"""The command-line contract: commands, JSON fields and exit codes that users and CI rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlpsetup import __version__


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"nlpsetup {__version__}"


def test_list_json_has_every_recipe_with_availability(run_cli):
    from nlpsetup.base import paths

    code, out, err = run_cli("list", "--json")
    assert code == 0, err
    rows = json.loads(out)
    names = {p.stem for p in paths.builtin_recipes_dir().glob("*.toml")}
    assert {r["name"] for r in rows} == names
    for r in rows:
        assert set(r) >= {"name", "available", "reason"}
        assert (r["reason"] is None) == r["available"]


def test_plan_json_contract(run_cli):
    code, out, err = run_cli("plan", "spacy", "--json")
    assert code == 0, err
    plan = json.loads(out)
    for key in ("schema_version", "tool", "variant", "python", "env", "steps", "smoke", "warnings"):
        assert key in plan
    assert plan["python"]["version"] and plan["python"]["path"]
    assert Path(plan["python"]["path"]).exists(), "the plan must name an interpreter that exists here"
    assert plan["env"]["name"] == "spacy" and plan["env"]["path"].endswith("envs/spacy")
    assert all(isinstance(s["argv"], list) and s["argv"] for s in plan["steps"])


def test_plan_adaptnlp_picks_a_python_this_host_has_and_the_recipe_allows(run_cli):
    code, out, err = run_cli("plan", "adaptnlp", "--json")
    if code == 3:
        refusal = json.loads(out)
        assert any("3.8" in r for rej in refusal["rejected"] for r in rej["reasons"])
        pytest.skip("this machine has no Python 3.8")
    plan = json.loads(out)
    assert plan["python"]["version"].startswith("3.8.") and Path(plan["python"]["path"]).exists()


def test_refusal_exit_3_names_the_python_range(run_cli):
    code, out, err = run_cli("plan", "adaptnlp", "--python", "3.13")
    assert code == 3
    assert "cannot be installed with Python 3.13" in err and "needs Python 3.8" in err
    code, out, _ = run_cli("plan", "adaptnlp", "--python", "3.13", "--json")
    data = json.loads(out)
    assert code == 3 and data["refused"] is True and data["tool"] == "adaptnlp"
    assert data["rejected"][0]["variant"] == "0.3.7" and data["rejected"][0]["reasons"]


def test_simulated_windows_host_is_refused_a_linux_only_variant(run_cli):
    code, _, err = run_cli("plan", "autogluon", "--variant", "0.3.1", "--platform", "windows")
    assert code == 3 and "not windows" in err
    code, _, err = run_cli("plan", "tensorflow-text", "--platform", "windows")
    assert code == 3 and "windows" in err


def test_simulated_platform_plan_has_a_version_not_a_path(run_cli):
    code, out, _ = run_cli("plan", "spacy", "--platform", "macos", "--arch", "arm64", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["python"]["path"] is None and plan["python"]["simulated"] is True
    assert any("simulated" in w for w in plan["warnings"])


def test_simulated_host_says_what_it_assumes_and_takes_linux_arch_names(run_cli):
    code, out, _ = run_cli("plan", "spacy", "--platform", "linux", "--arch", "aarch64", "--glibc", "2.28", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["host"] == "linux arm64 glibc 2.28 (simulated)"
    assert "simulated linux host: arm64, glibc 2.28 (change with --arch, --glibc)" in plan["warnings"]
    code, _, err = run_cli("plan", "spacy", "--platform", "linux", "--glibc", "two")
    assert code == 2 and "not a glibc version" in err


def test_host_file_round_trip(run_cli, tmp_path):
    code, out, _ = run_cli("host", "--json")
    assert code == 0
    f = tmp_path / "h.json"
    data = json.loads(out)
    data["os"] = "windows"
    data["pythons"] = ["3.12.4"]
    f.write_text(json.dumps(data))
    code, out, err = run_cli("plan", "spacy", "--host-file", str(f), "--json")
    assert code == 0, err
    assert json.loads(out)["python"]["version"] == "3.12.4"


@pytest.mark.parametrize(("args", "words"), [
    (["plan", "spaci"], "did you mean spacy"),
    (["plan", "spacy==="], "not a tool specifier"),
    (["plan", "spacy", "--python", "latest"], "neither a Python request"),
    (["plan", "spacy", "--python", "/nonexistent/python"], "no such file"),
    (["plan", "spacy", "--compute", "gpu"], "--compute 'gpu'"),
    (["plan", "spacy", "--variant", "9.9"], "no variant '9.9'"),
    (["plan", "spacy", "--name", "../escape"], "invalid env name"),
    (["plan", "spacy", "--host-file", "/nonexistent.json"], "--host-file"),
    (["show", "nope"], "unknown tool 'nope'"),
])
def test_usage_errors_exit_2_with_one_line_and_no_traceback(run_cli, args, words, tmp_path):
    code, out, err = run_cli(*args, env={"PIP_INDEX_URL": tmp_path.as_uri()})  # an unknown name: not on the index either
    assert code == 2, (out, err)
    assert words in err and "Traceback" not in err
    assert err.startswith("nlpsetup: error:")


def test_broken_user_recipe_is_reported_but_others_still_work(run_cli, tmp_path):
    (tmp_path / "broken.toml").write_text("name = [")
    code, out, err = run_cli("list", "--json", env={"NLPSETUP_RECIPES_PATH": str(tmp_path)})
    assert code == 0 and "broken.toml" in err
    assert any(r["name"] == "spacy" for r in json.loads(out))


def test_show_json_has_variants_with_pins_and_reasons(run_cli):
    code, out, _ = run_cli("show", "adaptnlp", "--json")
    data = json.loads(out)
    assert code == 0 and data["name"] == "adaptnlp" and data["variants"][0]["python"] == "3.8"
    assert any(p["why"] for p in data["variants"][0]["pins"])
    code, out, _ = run_cli("show", "tf-text")
    assert code == 0 and "follows tensorflow's major.minor" in out


def test_python_m_nlpsetup_works(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0 and "plan" in out and "list" in out


def test_debug_shows_the_traceback(run_cli):
    code, _, err = run_cli("--debug", "show", "nope")
    assert code != 0 and "Traceback" in err


def test_list_cache_sees_a_changed_recipe_and_keeps_warning_about_broken_ones(run_cli, tmp_path):
    good = tmp_path / "demo.toml"
    good.write_text('name = "demo"\nsummary = "d"\nhomepage = "h"\nstatus = "active"\n'
                    '[[variants]]\npython = ">=3.0"\npackages = ["demo"]\n[variants.smoke]\nimports = ["demo"]\n')
    (tmp_path / "broken.toml").write_text("name = [")
    env = {"NLPSETUP_RECIPES_PATH": str(tmp_path)}
    for _ in range(2):  # the second run is served from the cache
        code, out, err = run_cli("list", "--json", env=env)
        assert code == 0 and "broken.toml" in err
        assert next(r for r in json.loads(out) if r["name"] == "demo")["available"] is True
    good.write_text(good.read_text().replace('">=3.0"', '">=9.0"'))
    code, out, _ = run_cli("list", "--json", env=env)
    row = next(r for r in json.loads(out) if r["name"] == "demo")
    assert row["available"] is False and "9.0" in row["reason"]


def test_tools_that_need_different_pythons_cannot_share_one_env(run_cli):
    # kashgari stops at Python 3.8, flair starts at 3.9: no one interpreter serves both.
    code, out, err = run_cli("install", "kashgari", "flair", "--dry-run")
    if "no Python" in err or "needs a Python this host does not have" in err.splitlines()[0]:
        pytest.skip("this machine lacks the Pythons the two recipes need")
    assert code == 3
    assert "kashgari and flair cannot share one env: kashgari needs Python 3.8" in err
    assert "needs Python >=3.9" in err


def test_tools_that_agree_share_one_plan(run_cli):
    code, out, err = run_cli("install", "adaptnlp", "spacy", "--dry-run", "--json")
    if code == 3:
        pytest.skip("this machine has no Python 3.8")
    plans = json.loads(out)
    assert code == 0 and [p["tool"] for p in plans] == ["adaptnlp", "spacy"]
    assert {p["python"]["version"] for p in plans} == {plans[0]["python"]["version"]}
    assert {p["env"]["name"] for p in plans} == {"adaptnlp-spacy"}


def test_json_errors_are_one_document_on_stdout_with_the_exit_code(run_cli, tmp_path):
    code, out, err = run_cli("plan", "nosuchtool", "--json", env={"PIP_INDEX_URL": tmp_path.as_uri()})
    doc = json.loads(out)
    assert code == 2 and doc["error"]["exit_code"] == 2 and "nosuchtool" in doc["error"]["message"]
    assert doc["error"]["hint"] and "Traceback" not in err
    code, out, _ = run_cli("plan", "spacy", "--no-such-option", "--json")
    assert code == 2 and json.loads(out)["error"]["exit_code"] == 2
    code, out, _ = run_cli("plan", "adaptnlp", "--python", "3.13", "--json")
    doc = json.loads(out)
    assert code == 3 and doc["error"]["exit_code"] == 3 and doc["refused"] is True


def test_python_requests_read_as_python_discovery_reads_them(run_cli):
    for request, minor in (("cp39", "3.9"), ("python3.12", "3.12"), ("py311", "3.11")):
        code, out, err = run_cli("plan", "spacy", "--python", request, "--json")
        assert code == 0, err
        assert json.loads(out)["python"]["version"].startswith(minor + "."), request
    code, out, _ = run_cli("plan", "spacy", "--python", ">=3.12", "--json")
    assert code == 0 and tuple(map(int, json.loads(out)["python"]["version"].split(".")[:2])) >= (3, 12)


def test_dry_run_json_is_a_list_whatever_the_number_of_tools(run_cli):
    code, out, err = run_cli("install", "spacy", "--dry-run", "--json")
    assert code == 0, err
    plans = json.loads(out)
    assert isinstance(plans, list) and [p["tool"] for p in plans] == ["spacy"]


def test_recipe_check_and_remove_speak_json(run_cli, tmp_path):
    bad = tmp_path / "demo.toml"
    bad.write_text('name = "demo"\n')
    code, out, _ = run_cli("recipe", "check", str(bad), "--json")
    (row,) = json.loads(out)
    assert code == 2 and row["ok"] is False and row["problems"]
    code, out, _ = run_cli("remove", "nothere", "--yes", "--json")
    assert code == 2 and "nothere" in json.loads(out)["error"]["message"]


def test_a_warm_list_json_answered_before_the_cli_loads_is_the_same_document(run_cli):
    cold = run_cli("list", "--json")
    warm = run_cli("list", "--json")  # served by __main__ from list's cache, without click
    assert cold[0] == warm[0] == 0 and cold[1] == warm[1] and json.loads(warm[1])


def test_the_verbs_users_type_are_aliases_and_a_typo_never_suggests_its_opposite(run_cli):
    for alias, command in (("uninstall", "remove"), ("rm", "remove"), ("ls", "envs"), ("update", "upgrade")):
        code, out, err = run_cli(alias, "--help")
        assert code == 0 and out.startswith("Usage:"), (alias, err)
        assert run_cli(command, "--help")[1].split("\n", 1)[1] == out.split("\n", 1)[1]
    code, out, err = run_cli("ls", "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = run_cli("uninstal", "spacy")
    assert code == 2 and "'install'" not in err and "Did you mean 'uninstall' (remove)?" in err
    code, _, err = run_cli("instal", "spacy")
    assert code == 2 and "Did you mean 'install'?" in err
    # aliases stay out of --help's list but are completed
    code, out, _ = run_cli(env={"COMP_WORDS": "nlpsetup u", "COMP_CWORD": "1", "_NLPSETUP_COMPLETE": "bash_complete"})
    assert out.split() == ["plain,uninstall", "plain,update", "plain,upgrade"]


def test_dash_output_means_stdout_for_every_file_writer_and_bundle_refuses_it(cli, tmp_path, monkeypatch):
    from nlpsetup.resolve.backends import find_uv

    monkeypatch.chdir(tmp_path)  # where a file named "-" would land
    assert cli("install", "tinytool", "--backend", "uv" if find_uv() else "pip", "-q")[0] == 0
    code, out, err = cli("lock", "tinytool", "-o", "-")
    assert code == 0 and json.loads(out)["kind"] == "nlpsetup-lock", err
    code, out, err = cli("export", "tinytool", "-o", "-")
    assert code == 0 and "[[packages]]" in out and "wrote" not in out + err, err
    code, out, err = cli("doctor", "--quick", "--report", "-")
    assert out.startswith("## nlpsetup doctor report") and "Envs" in err
    code, out, err = cli("bundle", "tinytool", "-o", "-")
    assert code == 2 and len(err.strip().splitlines()) <= 2 and "-o -" in err and "Traceback" not in err
    assert not (tmp_path / "-").exists()


def test_compute_that_does_not_apply_warns_and_one_vocabulary_serves_plan_install_and_matrix(run_cli):
    code, out, err = run_cli("plan", "spacy", "--compute", "cu126", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["compute"] is None and any("no GPU build" in w and "cu126" in w for w in plan["warnings"])
    code, out, _ = run_cli("plan", "flair", "--compute", "cuda", "--platform", "macos", "--json")
    assert code == 3 and "no CUDA build this host can run" in out  # cuda asks for a GPU build: never a silent CPU one
    code, out, err = run_cli("matrix", "flair", "spacy", "--python", "3.12", "--compute", "cu126")
    data = json.loads(out)
    assert code == 0 and [c["compute"] for c in data["include"]] == ["cu126"], err
    assert data["excluded"][0]["tool"] == "spacy"
    helps = {}
    for command in ("plan", "install", "matrix"):
        text = " ".join(run_cli(command, "--help")[1].split())
        helps[command] = text[text.index("--compute"):].split(" --", 1)[0]
    assert helps["plan"] == helps["install"] and helps["plan"].split("[default")[0] in helps["matrix"]
    assert "cuda" in helps["plan"] and "cu126" in helps["plan"]


def test_install_does_not_offer_the_options_it_would_always_refuse(run_cli):
    text = run_cli("install", "--help")[1]
    for option in ("--platform", "--arch", "--glibc", "--host-file"):
        assert option not in text
        code, _, err = run_cli("install", "spacy", option, "x")
        assert code == 2 and f"No such option '{option}'" in err
    assert "--host-file" in run_cli("plan", "--help")[1]
