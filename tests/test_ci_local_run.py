"""The generated workflows run as generated: their Linux cells are executed here the way a runner
would, for a small recipe set served from the suite's local index.

This file is a test harness that emulates a CI runner, so it runs the workflow's shell lines with
bash, as runners do. What it stands in for, and how:
- actions/setup-python: this host's pyenv interpreter of the asked version goes on PATH. The Python
  nlpsetup runs on is a venv of that interpreter that already has nlpsetup's dependencies (a .pth to
  this suite's site-packages, nlpsetup itself left out), since the local index has only tiny wheels;
  the workflow's own `pip install "$NLPSETUP_SPEC"` then installs nlpsetup from that index.
- GitLab's `image: python:3.12`: the same venv; the cell's Python, which uv would download there
  (`--fetch-python`), is this host's pyenv interpreter on PATH.
- the repository's index settings (PIP_INDEX_URL and friends): the local index (installkit.environ).
- actions/checkout, actions/cache, actions/upload-artifact: not run; their inputs are checked to
  have no expression left unresolved.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

import installkit
import wheelhouse
from nlpsetup import __version__

REPO = Path(__file__).resolve().parents[1]
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
SPEC = f"nlpsetup[uv]=={__version__}"
TOOLS = ["tinytool", "nlpdemo"]
PYTHONS = ["3.9", "3.12"]  # 3.8 and older first upgrade pip, which the local index lacks


def pyenv(minor: str) -> Path:
    found = sorted(PYENV.glob(f"{minor}.*/bin/python{minor}"))
    if not found:
        pytest.skip(f"no pyenv CPython {minor} on this host (the runner's setup-python stand-in)")
    return found[-1]


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    """The local index with nlpsetup's own wheel added, and the Python nlpsetup runs on."""
    root = tmp_path_factory.mktemp("runner")
    kit = installkit.build(root / "kit")
    dist = root / "dist"
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(dist), str(REPO)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    assert p.returncode == 0, p.stderr
    files = Path(kit["index"].removeprefix("file://")).parent / "files"
    kit["index"] = wheelhouse.write_simple_index(root / "ci-index", [*files.iterdir(), *dist.glob("*.whl")])
    deps = root / "deps"
    deps.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if "nlpsetup" not in entry.name and entry.suffix != ".pth" and entry.name != "__pycache__":
            (deps / entry.name).symlink_to(entry)
    uv = Path(sysconfig.get_paths()["scripts"]) / "uv"
    if not uv.exists():
        pytest.skip("uv is not installed (pip install 'nlpsetup[uv]'): the workflow installs and uses it")

    def fresh_python(where: Path) -> Path:
        """setup-python "3.12" on a new runner, with nlpsetup's dependencies but not nlpsetup."""
        subprocess.run([str(pyenv("3.12")), "-m", "venv", str(where)], check=True, timeout=120)
        (next(where.glob("lib/python3.12/site-packages")) / "runner-deps.pth").write_text(f"{deps}\n")
        (where / "bin" / "uv").symlink_to(uv)  # where the [uv] extra puts it on a runner
        return where / "bin"

    return kit, fresh_python


def generate(kit, home: Path, tmp: Path, *args: str) -> dict:
    out = tmp / "generated.yml"
    p = subprocess.run([sys.executable, "-m", "nlpsetup", "ci", "init", "--no-check", *TOOLS, "--python", ",".join(PYTHONS),
                        "-o", str(out), "--install-spec", SPEC, *args], capture_output=True, text=True,
                       env=installkit.environ(kit, home), timeout=120)
    assert p.returncode == 0, p.stderr
    return yaml.safe_load(out.read_text())


def runner_env(kit, tmp: Path, nlpsetup_bin: Path, cell_python: Path, **extra: str) -> dict[str, str]:
    """A fresh runner: the setup-python stand-ins first on PATH, no other pyenv Python visible."""
    base = [d for d in os.environ["PATH"].split(os.pathsep)
            if ".pyenv" not in d and Path(d).resolve() != Path(sys.executable).parent.resolve()]
    env = installkit.environ(kit, tmp / "unused-home")
    env.pop("NLPSETUP_HOME")
    env.pop("UV_CACHE_DIR")
    env.pop("PIP_CACHE_DIR")
    env.update(PATH=os.pathsep.join([str(nlpsetup_bin), str(cell_python.parent), *base]),
               PYENV_ROOT=str(tmp / "no-pyenv"), HOME=str(tmp / "runner-home"), CI="true", **extra)
    return env


def expand_github(text, cell: dict, workspace: Path):
    if not isinstance(text, str):
        return text
    values = {**{f"matrix.{k}": str(v) for k, v in cell.items()}, "github.workspace": str(workspace),
              "runner.os": "Linux", "runner.arch": "X64"}

    def one(m: re.Match) -> str:
        assert m.group(1) in values, f"the harness cannot evaluate ${{{{ {m.group(1)} }}}}"
        return values[m.group(1)]

    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", one, text)


def bash(script: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_github_workflow_linux_cells_run_as_generated(runner, tmp_path):
    kit, fresh_python = runner
    doc = generate(kit, tmp_path / "gen-home", tmp_path)
    cells = [c for job in doc["jobs"].values() for c in job["strategy"]["matrix"]["include"]]
    assert {(c["tool"], c["python"]) for c in cells} == {(t, p) for t in TOOLS for p in PYTHONS}
    for name, job in doc["jobs"].items():
        for cell in job["strategy"]["matrix"]["include"]:
            assert cell["platform"] == "linux" and cell["os"] == "ubuntu-24.04"
            ws = tmp_path / f"ws-{cell['tool']}-{cell['python']}"
            ws.mkdir()
            summary, output = ws.parent / f"{ws.name}.summary", ws.parent / f"{ws.name}.output"
            env = runner_env(kit, tmp_path, fresh_python(ws.parent / f"{ws.name}-runner-python"), pyenv(cell["python"]),
                             GITHUB_ACTIONS="true",
                             GITHUB_WORKSPACE=str(ws), GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(output),
                             RUNNER_OS="Linux", RUNNER_ARCH="X64")
            env.update({k: expand_github(v, cell, ws) for k, v in {**doc["env"], **job["env"]}.items()})
            assert int(expand_github(str(job["timeout-minutes"]), cell, ws)) == cell["timeout_minutes"]
            logs = []
            for step in job["steps"]:
                if step.get("if") == "failure()":
                    continue
                uses = step.get("uses", "")
                if uses.startswith("actions/setup-python@"):
                    asked = expand_github(step["with"]["python-version"], cell, ws)
                    assert asked in (cell["python"], "3.12"), asked  # the cell's, or the one nlpsetup runs on
                elif uses:
                    for value in (step.get("with") or {}).values():
                        assert "${{" not in expand_github(str(value), cell, ws)
                else:
                    assert "${{" not in step["run"]
                    p = bash(step["run"], env, ws)
                    logs.append(p.stdout + p.stderr)
                    assert p.returncode == 0, f"{name} {cell['tool']} {cell['python']}: {step['run']}\n{logs[-1][-3000:]}"
            assert f"Successfully installed nlpsetup-{__version__}" in logs[0], "nlpsetup came from the index"
            install = logs[1]
            assert "::group::install" in install and "::endgroup::" in install
            manifest = ws / ".nlpsetup" / "envs" / cell["tool"] / "nlpsetup.json"
            assert manifest.is_file(), "the cell's env was built where the job's env says"
            assert f'"version": "{cell["python"]}.' in manifest.read_text()
            rows = [ln for ln in summary.read_text().splitlines() if ln.startswith("| ✅")]
            assert len(rows) == 1 and f"| {cell['tool']} |" in rows[0]
            assert (ws / ".cache" / "uv").is_dir() and not (ws / ".cache" / "pip" / "http-v2").exists()


def expand_gitlab(text: str, variables: dict) -> str:
    return re.sub(r"\$(\w+)", lambda m: variables.get(m.group(1), m.group(0)), text)


def test_gitlab_pipeline_linux_cells_run_as_generated(runner, tmp_path):
    kit, fresh_python = runner
    doc = generate(kit, tmp_path / "gen-home", tmp_path, "--provider", "gitlab")
    template = doc[".nlpsetup"]
    assert template["image"] == "python:3.12"
    jobs = {k: v for k, v in doc.items() if not k.startswith(".") and k not in ("stages", "variables")}
    entries = [e for job in jobs.values() for e in job["parallel"]["matrix"]]
    assert {(e["TOOL"], e["PYTHON"]) for e in entries} == {(t, p) for t in TOOLS for p in PYTHONS}
    for name, job in jobs.items():
        assert job["extends"] == ".nlpsetup"
        for entry in job["parallel"]["matrix"]:
            project = tmp_path / f"project-{entry['TOOL']}-{entry['PYTHON']}"
            project.mkdir()
            variables = {"CI_PROJECT_DIR": str(project), **doc["variables"], **entry}
            variables.update({k: expand_gitlab(v, variables) for k, v in template["variables"].items()})
            assert "$" not in expand_gitlab(template["cache"]["key"], variables)
            assert expand_gitlab(template["tags"][0], variables) == "saas-linux-small-amd64"
            env = runner_env(kit, tmp_path, fresh_python(project.parent / f"{project.name}-runner-python"), pyenv(entry["PYTHON"]),
                             GITLAB_CI="true", **variables)
            # GitLab runs a job's script lines in one shell that stops at the first failing line.
            p = bash("\n".join(template["script"]), env, project)
            assert p.returncode == 0, f"{name} {entry}: {(p.stdout + p.stderr)[-3000:]}"
            assert f"Successfully installed nlpsetup-{__version__}" in p.stdout
            assert "::group::" not in p.stdout, "GitHub's workflow commands only on GitHub Actions"
            manifest = project / ".nlpsetup" / "envs" / entry["TOOL"] / "nlpsetup.json"
            assert manifest.is_file() and f'"version": "{entry["PYTHON"]}.' in manifest.read_text()
