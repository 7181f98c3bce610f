"""CI matrices from the recipes, the generated workflows, and CI mode."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from nlpsetup.authoring import matrix
from nlpsetup.base import paths
from nlpsetup.recipes import load as recipes
from nlpsetup.recipes.model import Recipe

BOOK = recipes.load_book([paths.builtin_recipes_dir()])
SIX = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
ALL = ["linux", "macos", "windows"]

FIXED = {
    "alpha": '[[variants]]\nid = "2"\npython = ">=3.10"\npackages = ["alpha>=2"]\n'
             '[[variants]]\nid = "1"\npython = ">=3.8,<3.10"\npackages = ["alpha<2"]\n',
    "beta": '[[variants]]\nid = "1"\npython = ">=3.9,<3.12"\nplatforms = ["linux"]\npackages = ["beta"]\n',
    "gamma": '[[variants]]\nid = "1"\npython = "==3.8.*"\nplatforms = ["linux", "macos"]\narch = ["x86_64"]\n'
             'packages = ["gamma"]\n',
}


def fixed_recipes(table: dict[str, str] = FIXED) -> list[Recipe]:
    head = 'name = "{n}"\nsummary = "s"\nhomepage = "h"\nstatus = "active"\n'
    return [recipes.parse(head.format(n=n) + body + '[variants.smoke]\nimports = ["x"]\n', f"{n}.toml", stem=n)
            for n, body in table.items()]


def cells(m, tool):
    return {(c["python"], c["platform"]): c["variant"] for c in m.include if c["tool"] == tool}


def test_cell_count_for_a_fixed_recipe_set():
    m = matrix.build(fixed_recipes(), SIX, ALL)
    # alpha: every python on every platform (18); beta: 3.9-3.11 on linux (3);
    # gamma: 3.8 on linux and, being x86_64 only, on the Intel macOS image (2)
    assert len(m.include) == 23 and len(m.include) + len(m.excluded) == 3 * 6 * 3
    assert cells(m, "alpha")[("3.9", "windows")] == "1" and cells(m, "alpha")[("3.10", "macos")] == "2"
    gamma = {c["platform"]: (c["os"], c["arch"]) for c in m.include if c["tool"] == "gamma"}
    assert gamma == {"linux": ("ubuntu-24.04", "x86_64"), "macos": ("macos-15-intel", "x86_64")}
    assert {c["os"] for c in m.include if c["tool"] == "alpha" and c["platform"] == "macos"} == {"macos-15"}


def test_a_python_the_newest_image_lacks_goes_to_an_older_image_or_is_excluded_with_the_reason():
    old = fixed_recipes({"old": '[[variants]]\nid = "1"\npython = ">=3.6"\npackages = ["old"]\n'})
    m = matrix.build(old, ["3.6", "3.7"], ALL)
    alpha = {(c["python"], c["platform"]): c["os"] for c in m.include}
    # Python 3.7: ubuntu-24.04 has none, ubuntu-22.04 has it; macOS arm64 has none, Intel has it.
    assert alpha[("3.7", "linux")] == "ubuntu-22.04" and alpha[("3.7", "macos")] == "macos-15-intel"
    assert ("3.6", "linux") not in alpha, "no GitHub Linux image offers 3.6 any more"
    assert alpha[("3.6", "macos")] == "macos-15-intel" and alpha[("3.6", "windows")] == "windows-2025"
    why = excluded(m, "old", "3.6", "linux")
    assert any("no github hosted runner for linux x86_64 offers Python 3.6" in r and "ubuntu-22.04: 3.7-3.14" in r
               for r in why)


def test_no_cell_asks_a_runner_for_a_python_or_arch_its_table_row_lacks():
    rows = {r.label: r for r in matrix.runners("github")}
    m = matrix.build(list(BOOK.recipes.values()), None, ALL)
    assert m.include
    for c in m.include:
        row = rows[c["os"]]
        assert c["python"] in row.pythons and c["arch"] == row.arch and c["platform"] == row.platform, c
        assert 10 <= c["timeout_minutes"] <= matrix.MAX_MINUTES


def test_runner_table_names_its_sources_and_every_platform_has_an_image():
    t = matrix.table()
    assert {"pythons", "labels", "actions", "gitlab"} <= set(t["source"])
    assert "versions-manifest.json" in t["source"]["pythons"] and "2026" in t["source"]["pythons"]
    assert {r.platform for r in matrix.runners("github")} == set(ALL)
    assert {(r.platform, r.arch) for r in matrix.runners("github")} >= {
        ("linux", "x86_64"), ("linux", "arm64"), ("macos", "arm64"), ("macos", "x86_64"), ("windows", "x86_64")}
    for action, pin in t["actions"].items():
        assert len(pin["sha"]) == 40 and all(ch in "0123456789abcdef" for ch in pin["sha"]), action
        assert pin["version"].startswith("v"), action


def _fake(n_tools: int, per_tool: int) -> matrix.Matrix:
    return matrix.Matrix(tuple({"tool": f"t{t}", "python": "3.12", "os": "ubuntu-24.04"} for t in range(n_tools)
                               for _ in range(per_tool)), ())


@pytest.mark.parametrize(("provider", "limit"), [("github", 256), ("gitlab", 200)])
def test_sets_past_the_matrix_limit_split_into_one_job_per_tool_and_chunks(provider, limit):
    assert [n for n, _ in matrix.jobs(_fake(2, limit // 2), provider)] == ["install"]
    per_tool = matrix.jobs(_fake(3, 100), provider)
    assert [n for n, _ in per_tool] == ["install-t0", "install-t1", "install-t2"]
    big = matrix.jobs(_fake(1, 2 * limit + 1), provider)
    assert [(n, len(c)) for n, c in big] == [("install-t0-1", limit), ("install-t0-2", limit), ("install-t0-3", 1)]


def excluded(m, tool, python, platform):
    return next(x["reasons"] for x in m.excluded if (x["tool"], x["python"], x["platform"]) == (tool, python, platform))


def test_real_recipes_exclude_cells_for_the_right_reasons():
    m = matrix.build([BOOK.find(t) for t in ("adaptnlp", "lingvo", "tensorflow-text", "spacy")], SIX, ALL)
    assert "needs Python 3.8" in excluded(m, "adaptnlp", "3.12", "linux")[0]
    assert any("only, not windows" in r for r in excluded(m, "lingvo", "3.9", "windows"))
    assert any("only, not macos" in r for r in excluded(m, "lingvo", "3.9", "macos"))
    tft = excluded(m, "tensorflow-text", "3.12", "windows")
    assert {r.split(":")[0] for r in tft if "not windows" in r} == {v.id for v in BOOK.find("tensorflow-text").variants}
    assert ("3.12", "linux") in cells(m, "tensorflow-text") and ("3.12", "macos") in cells(m, "tensorflow-text")
    assert len(cells(m, "spacy")) == 18


def test_github_format_is_ready_for_fromjson_and_runners_can_be_overridden(run_cli):
    code, out, err = run_cli("matrix", "spacy", "adaptnlp", "--python", ",".join(SIX), "--platform",
                             ",".join(ALL), "--format", "github", "--runner", "linux=ubuntu-22.04")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"include"}
    for c in data["include"]:
        assert {"tool", "python", "os", "variant"} <= set(c)
        # adaptnlp: 0.3.7 on 3.8 and 0.3.3 on 3.9 (Linux x86_64 only); every other cell is refused
        allowed = {("3.8", "0.3.7"), ("3.9", "0.3.3")}
        assert not (c["tool"] == "adaptnlp" and (c["python"], c["variant"]) not in allowed), \
            "a refused cell leaked into the matrix"
    assert {c["os"] for c in data["include"]} == {"ubuntu-22.04", "macos-15", "macos-15-intel", "windows-2025"}
    assert "excluded adaptnlp python 3.13 linux" in err


def test_gitlab_format_parses_as_yaml(run_cli):
    code, out, _ = run_cli("matrix", "spacy", "--python", "3.11,3.12", "--format", "gitlab")
    data = yaml.safe_load(out)
    assert code == 0 and data["parallel"]["matrix"][0] == {
        "TOOL": "spacy", "PYTHON": "3.11", "PLATFORM": "linux", "ARCH": "x86_64", "VARIANT": "3.8", "COMPUTE": "cpu",
        "RECIPE_DIGEST": BOOK.find("spacy").digest[:12], "RUNNER": "saas-linux-small-amd64"}


def test_cuda_matrix_keeps_only_cells_with_a_cuda_build(run_cli):
    code, out, _ = run_cli("matrix", "autogluon", "spacy", "--python", "3.12", "--platform", "linux,macos",
                           "--compute", "cuda")
    data = json.loads(out)
    assert [(c["tool"], c["platform"]) for c in data["include"]] == [("autogluon", "linux")]
    assert data["include"][0]["compute"].startswith("cu")


@pytest.mark.parametrize(("args", "words"), [
    (["--platform", "beos"], "--platform 'beos'"),
    (["--python", "three"], "--python 'three'"),
    (["--runner", "linux"], "PLATFORM=LABEL"),
    (["--format", "gitlab", "--platform", "linux,macos"], "gitlab has no hosted runner nlpsetup can use for macos"),
])
def test_matrix_usage_errors(run_cli, args, words):
    code, _, err = run_cli("matrix", "spacy", *args)
    assert code == 2 and words in err


def test_github_actions_mode_groups_output_annotates_failures_and_writes_a_summary(tmp_path):
    import installkit

    kit = installkit.build(tmp_path / "kit")
    summary = tmp_path / "summary.md"
    env = installkit.environ(kit, tmp_path / "home", CI="true", GITHUB_ACTIONS="true",
                             GITHUB_STEP_SUMMARY=str(summary))
    p = subprocess.run([sys.executable, "-m", "nlpsetup", "install", "brokenimport", "--backend", "pip", "--ci"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 1
    out = p.stdout
    # Each step's own output sits between its ::group:: and ::endgroup:: lines.
    install = out[out.index("::group::install"):]
    install = install[:install.index("::endgroup::")]
    assert "brokenimport" in install and "Successfully installed" in install
    smoke = out[out.index("::group::smoke"):]
    assert smoke.index("brokenimport needs libfoo.so.1") < smoke.index("::endgroup::")
    # Commands are paused inside a group, and resumed with the same token before it closes.
    token = install.split("::stop-commands::", 1)[1].split("\n", 1)[0]
    assert f"::{token}::" in install
    error = next(line for line in out.splitlines() if line.startswith("::error "))
    assert error.startswith("::error title=nlpsetup install brokenimport failed::")
    assert "%0A" in error and "ImportError: brokenimport needs libfoo.so.1" in error, "the log's last lines"
    rows = [ln for ln in summary.read_text().splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(rows) == 2 and rows[1].startswith("| ❌ | brokenimport | 1 |"), rows  # header + one row per cell
    assert "smoke check failed" in rows[1] and "<details>" in summary.read_text()
    assert "\x1b[" not in out + p.stderr, "no colour or spinner escapes in CI"
