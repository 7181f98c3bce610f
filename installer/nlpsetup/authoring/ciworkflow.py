"""`nlpsetup ci init`: a workflow that installs and verifies each matrix cell on a hosted runner that
can give the cell's Python and architecture (see matrix.py), uploading the install log when it fails
and caching pip and uv downloads per recipe digest, Python and runner. The workflow installs the
nlpsetup that wrote it (install_spec), with actions pinned to commits (data/runners.toml), read-only
permissions, and matrix values reaching shell lines only through environment variables."""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from nlpsetup.authoring import matrix as mx
from nlpsetup.base import proc
from nlpsetup.base.errors import NlpsetupError
from nlpsetup.base.redact import escape_controls, mask_text
from nlpsetup.recipes.model import Recipe

DEFAULT_PATH = {"github": ".github/workflows/nlpsetup.yml", "gitlab": ".gitlab-ci.yml"}
# The Python nlpsetup itself runs on in CI (it needs 3.10 or newer); cells pick their own.
NLPSETUP_PYTHON = "3.12"


@dataclass(frozen=True)
class Options:
    tools: tuple[str, ...] = ()
    provider: str = "github"
    python: str = "supported"
    platform: str = "linux"
    install_spec: str | None = None  # None: the nlpsetup that runs this (see install_spec)
    output: str | None = None  # None: the provider's usual path; "-": stdout
    force: bool = False
    check: bool = False

    def args(self) -> str:
        """The `ci init` arguments that regenerate the same file (written in its first line)."""
        out = "".join(f" {t}" for t in self.tools)
        out += f" --provider {self.provider}" if self.provider != "github" else ""
        out += f" --python {self.python}" if self.python != "supported" else ""
        out += f" --platform {self.platform}" if self.platform != "linux" else ""
        out += f" --install-spec '{self.install_spec}'" if self.install_spec else ""
        return out


@dataclass(frozen=True)
class Written:
    path: str  # "-": the caller prints text
    text: str
    matrix: mx.Matrix
    jobs: list[tuple[str, list[dict]]]  # (job id, its cells)
    status: str  # written | unchanged | differs (not written: see diff) | stdout
    diff: str = ""


# --- where it goes --------------------------------------------------------------------------------------

def repo_root(start: Path) -> Path | None:
    """The git work tree holding `start`: the nearest folder with a `.git` (a folder, or the file of a
    worktree or submodule), or None outside any."""
    start = start.resolve()
    return next((d for d in (start, *start.parents) if (d / ".git").exists()), None)


def default_branch(root: Path | None) -> str:
    """The remote's default branch as this clone knows it (origin/HEAD, no network); in a repository
    with no remote yet, the branch it is on (a fresh `git init` may be on master); else main."""
    if root is None:
        return "main"
    code, out = proc.capture(["git", "-C", str(root), "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"],
                             env=proc.child_env(), timeout=10)
    if code == 0 and "/" in out.strip():
        return out.strip().split("/", 1)[1]
    code, remotes = proc.capture(["git", "-C", str(root), "remote"], env=proc.child_env(), timeout=10)
    code2, head = proc.capture(["git", "-C", str(root), "symbolic-ref", "--quiet", "--short", "HEAD"],
                               env=proc.child_env(), timeout=10)
    return head.strip() if code == 0 and not remotes.strip() and code2 == 0 and head.strip() else "main"


def default_path(provider: str, cwd: Path) -> str:
    """The provider's usual file at the repository's root, wherever in it ci init runs (else here)."""
    root = repo_root(cwd)
    return os.path.relpath((root or cwd) / DEFAULT_PATH[provider], cwd)


# --- what it costs and leaves out -------------------------------------------------------------------------

def job_lines(jobs: list[tuple[str, list[dict]]]) -> list[str]:
    """One line per job: its cells, the runners they take, and the runner-minutes its limits allow."""
    out = []
    for name, cells in jobs:
        labels = Counter(c["os"] for c in cells)
        runners = ", ".join(f"{n} on {label}" for label, n in labels.items())
        out.append(f"  {name}: {len(cells)} cell{'s' if len(cells) != 1 else ''} ({runners}), "
                   f"at most {minutes(cells)} runner-minutes")
    return out


def minutes(cells: list[dict]) -> int:
    """Runner-minutes if every cell ran to its timeout-minutes (each cell is a job of its own)."""
    return sum(c["timeout_minutes"] for c in cells)


def exclusion_reasons(m: mx.Matrix) -> list[str]:
    """Why cells are left out: each (tool, reason) once, with the cells (python platform) it keeps out."""
    cells: dict[tuple[str, str], list[str]] = {}
    for x in m.excluded:
        for reason in x["reasons"]:
            cells.setdefault((x["tool"], reason), []).append(f"{x['python']} {x['platform']}")
    return [f"  {tool} {reason} [{', '.join(where)}]" for (tool, reason), where in cells.items()]


# --- what the workflow installs -------------------------------------------------------------------------

def install_spec(version: str, direct_url: dict | None) -> str:
    """The requirement that installs this nlpsetup on a runner. `direct_url` is the PEP 610
    direct_url.json of the installed distribution (None when it came from an index)."""
    if direct_url is None:
        return f"nlpsetup[uv]=={version}"
    vcs = direct_url.get("vcs_info")
    url = direct_url.get("url", "")
    if vcs and vcs.get("commit_id"):
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and "@" in parts.netloc:  # a token for this machine, not for CI
            url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
        sub = f"#subdirectory={direct_url['subdirectory']}" if direct_url.get("subdirectory") else ""
        return f"nlpsetup[uv] @ {vcs.get('vcs', 'git')}+{url}@{vcs['commit_id']}{sub}"
    where = mask_text(url) or "a local path"
    raise NlpsetupError(f"this nlpsetup {version} was installed from {where}, which a CI runner cannot install",
                        hint="name what the workflow should install, e.g. --install-spec 'nlpsetup[uv] @ "
                             "git+https://github.com/OWNER/nlpsetup@COMMIT' (or '.[uv]' in nlpsetup's own repository)")


# Any C0 control (a newline would end the YAML line and the header comment), DEL and C1 controls.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def safe_spec(spec: str) -> str:
    """A user's --install-spec, if it may go into a file meant to be committed: one line, and no
    credentials (a token in it would be published with the repository)."""
    if _CONTROLS.search(spec):
        raise NlpsetupError(f"--install-spec {escape_controls(mask_text(spec))!r} contains a control character "
                            "(a newline would break the workflow file)", hint="pass the requirement on one line")
    if mask_text(spec) != spec:
        raise NlpsetupError(f"--install-spec {mask_text(spec)!r} carries a credential, and the workflow file is "
                            "meant to be committed",
                            hint="write the spec without it and give the runner the token as a CI secret, e.g. a step "
                                 "before install running: git config --global url.\"https://x-access-token:${{ "
                                 "secrets.NAME }}@HOST/\".insteadOf https://HOST/ (GitLab: a masked CI/CD variable)")
    return spec


def installed_spec() -> str:
    from importlib import metadata

    from nlpsetup import __version__

    try:
        raw = metadata.distribution("nlpsetup").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        raw = '{"url": ""}'  # running from a source tree that is not installed
    return install_spec(__version__, json.loads(raw) if raw else None)


def check_spec(spec: str) -> str:
    """That `spec` resolves on the index pip is configured for: `pip download --no-deps` of it."""
    safe_spec(spec)  # refused before it is tried: it could never be written
    with tempfile.TemporaryDirectory(prefix="nlpsetup-check-") as tmp:
        # In a file, not on the command line: a VCS spec may carry a token, and `ps` shows argv.
        reqs = os.path.join(tmp, "requirements.txt")
        with open(reqs, "w", encoding="utf-8") as f:
            f.write(spec + "\n")
        r = proc.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                      "--dest", os.path.join(tmp, "dl"), "-r", reqs], env=proc.child_env(), timeout=300)
    if not r.ok:
        last = next((ln for ln in reversed(r.tail) if ln.strip()), f"exit {r.returncode}")
        raise NlpsetupError(f"--check: the install spec {mask_text(spec)!r} does not resolve: {last.strip()}",
                            hint="publish that version, or pass --install-spec with one that resolves")
    return f"--check: {mask_text(spec)} resolves"


# --- the files ------------------------------------------------------------------------------------------

def generate(opts: Options, recipes: list[Recipe], version: str, branch: str = "main"
             ) -> tuple[str, mx.Matrix, list[tuple[str, list[dict]]]]:
    """(file text, matrix, jobs) for the options; `branch` is the one pushes to run it on."""
    pythons, platforms, _ = mx.parse_options(opts.python, opts.platform)
    spec = safe_spec(opts.install_spec) if opts.install_spec else installed_spec()
    m = mx.build(recipes, pythons, platforms, provider=opts.provider)
    jobs = mx.jobs(m, opts.provider)
    head = (f"# Generated by `nlpsetup ci init{opts.args()}` (nlpsetup {version}). Re-run it after changing "
            "recipes.\n")
    body = _github(jobs, spec, branch) if opts.provider == "github" else _gitlab(jobs, spec)
    return head + body, m, jobs


def write(opts: Options, recipes: list[Recipe], version: str) -> Written:
    """Generate the file and write it, unless it exists and differs and force is not set (then the
    diff says how); for `-o -` the caller prints the text."""
    cwd = Path.cwd()
    text, m, njobs = generate(opts, recipes, version, default_branch(repo_root(cwd)))
    path = opts.output or default_path(opts.provider, cwd)
    if path == "-":
        return Written(path, text, m, njobs, "stdout")
    p = Path(path)
    if p.exists():
        old = p.read_text(encoding="utf-8")
        if old == text:
            return Written(path, text, m, njobs, "unchanged")
        if not opts.force:
            diff = "\n".join(difflib.unified_diff(old.splitlines(), text.splitlines(), path, f"{path} (new)",
                                                  lineterm=""))
            return Written(path, text, m, njobs, "differs", diff)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return Written(path, text, m, njobs, "written")


def _pin(action: str) -> str:
    a = mx.table()["actions"][action]
    return f"{action}@{a['sha']} # {a['version']}"


def _y(value) -> str:
    """A YAML scalar: JSON's double-quoted strings are valid YAML."""
    return json.dumps(value)


def _github(jobs: list[tuple[str, list[dict]]], spec: str, branch: str) -> str:
    out = [
        "name: nlpsetup",
        "",
        "# Pushes to the default branch and pull requests: a pull request's commits run once, not twice.",
        "on:",
        "  push:",
        f"    branches: [{_y(branch)}]",
        "  pull_request:",
        "  workflow_dispatch:",
        "",
        "permissions:",
        "  contents: read",
        "",
        "concurrency:",
        "  group: nlpsetup-${{ github.ref }}",
        "  cancel-in-progress: true",
        "",
        "env:",
        f"  NLPSETUP_SPEC: {_y(spec)}",
        "",
        "jobs:",
    ]
    for name, cells in jobs:
        out += _github_job(name, cells)
    return "\n".join(out) + "\n"


def _github_job(name: str, cells: list[dict]) -> list[str]:
    lines = [
        f"  {name}:",
        "    name: ${{ matrix.tool }} ${{ matrix.variant }} on Python ${{ matrix.python }} (${{ matrix.os }})",
        "    runs-on: ${{ matrix.os }}",
        "    timeout-minutes: ${{ matrix.timeout_minutes }}",
        "    strategy:",
        "      fail-fast: false",
        "      matrix:",
    ]
    lines += ["        include:"] + [f"          - {json.dumps(c)}" for c in cells] if cells else ["        include: []"]
    cache = "nlpsetup-${{ runner.os }}-${{ runner.arch }}-py${{ matrix.python }}-"
    lines += [
        "    defaults:",
        "      run:",
        "        shell: bash",
        "    env:",
        "      NLPSETUP_HOME: ${{ github.workspace }}/.nlpsetup",
        "      UV_CACHE_DIR: ${{ github.workspace }}/.cache/uv",
        "      PIP_CACHE_DIR: ${{ github.workspace }}/.cache/pip",
        "      TOOL: ${{ matrix.tool }}",
        "      PYTHON: ${{ matrix.python }}",
        "    steps:",
        f"      - uses: {_pin('actions/checkout')}",
        "        with:",
        "          persist-credentials: false",
        "      - name: The cell's Python",
        f"        uses: {_pin('actions/setup-python')}",
        "        with:",
        "          python-version: ${{ matrix.python }}",
        "      - name: The Python nlpsetup runs on",
        f"        uses: {_pin('actions/setup-python')}",
        "        with:",
        f"          python-version: {_y(NLPSETUP_PYTHON)}",
        f"      - uses: {_pin('actions/cache')}",
        "        with:",
        "          path: |",
        "            .cache/pip",
        "            .cache/uv",
        f"          key: {cache}${{{{ matrix.recipe_digest }}}}",
        "          restore-keys: |",
        f"            {cache}",
        "      - name: Install nlpsetup",
        '        run: python -m pip install "$NLPSETUP_SPEC"',
        "      - name: Install and verify the tool",
        '        run: nlpsetup install "$TOOL" --python "$PYTHON" --ci',
        "      - name: Prune the cache to what was built here",
        "        run: |",
        "          python -m uv cache prune --ci",
        "          rm -rf .cache/pip/http .cache/pip/http-v2",
        "      - if: failure()",
        f"        uses: {_pin('actions/upload-artifact')}",
        "        with:",
        "          name: nlpsetup-log-${{ matrix.tool }}-${{ matrix.python }}-${{ matrix.os }}",
        "          path: .nlpsetup/logs/",
        "",
    ]
    return lines


def _gitlab(jobs: list[tuple[str, list[dict]]], spec: str) -> str:
    runner = mx.runners("gitlab")[0]
    minutes = max((c["timeout_minutes"] for _, cells in jobs for c in cells), default=30)
    out = [
        "stages:",
        "  - install",
        "",
        "variables:",
        f"  NLPSETUP_SPEC: {_y(spec)}",
        "",
        ".nlpsetup:",
        "  stage: install",
        f"  image: {runner_image(runner.label)}",
        "  tags:",
        '    - "$RUNNER"',
        f"  timeout: {minutes} minutes",
        "  variables:",
        "    NLPSETUP_HOME: $CI_PROJECT_DIR/.nlpsetup",
        "    PIP_CACHE_DIR: $CI_PROJECT_DIR/.cache/pip",
        "    UV_CACHE_DIR: $CI_PROJECT_DIR/.cache/uv",
        "  cache:",
        "    key: nlpsetup-$PLATFORM-$ARCH-py$PYTHON-$RECIPE_DIGEST",
        "    paths:",
        "      - .cache/pip",
        "      - .cache/uv",
        "  script:",
        '    - python -m pip install "$NLPSETUP_SPEC"',
        "    # The image's Python runs nlpsetup; uv downloads the cell's Python when it is another one.",
        '    - nlpsetup install "$TOOL" --python "$PYTHON" --fetch-python --ci',
        "    - python -m uv cache prune --ci",
        "    - rm -rf .cache/pip/http .cache/pip/http-v2",
        "  artifacts:",
        "    when: on_failure",
        "    paths:",
        "      - .nlpsetup/logs/",
    ]
    for name, cells in jobs:
        out += ["", f"{name}:", "  extends: .nlpsetup", mx.gitlab_block(cells, "  ").rstrip("\n")]
    return "\n".join(out) + "\n"


def runner_image(label: str) -> str:
    return next(r["image"] for r in mx.table()["gitlab"] if r["label"] == label)
