"""`nlpsetup doctor`'s host checks: the OS, the Pythons and their end of life, pip / virtualenv /
uv, conda, git, git-lfs, a compiler, the NVIDIA driver and each GPU, free disk, the package index
and proxies. Pure functions of the Host value (plus an injectable index probe), so any host can be
diagnosed in tests. This module never prints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from nlpsetup.base.redact import mask_text
from nlpsetup.doctor.finding import FAILURE, OK, WARNING, Finding, beside
from nlpsetup.facts.host import Host
from nlpsetup.resolve import compute, cpython

NEWEST_CUDA_MIN_SM = "7.5"  # cu128 and newer carry kernels for sm_75+ only (see data/cuda.toml)


def host_checks(host: Host, *, biggest_mb: int, today: dt.date, versions: dict[str, str | None],
                probe_index: Callable[[str], tuple[bool, str]] | None) -> list[Finding]:
    out = [_os(host)]
    out += _pythons(host, today)
    out += _tools(host, versions)
    out += _gpu(host)
    out.append(_disk(host, biggest_mb))
    out.append(_index(host, probe_index))
    if host.proxies:
        out.append(Finding("host.proxy", OK, "proxy: " + ", ".join(f"{k}={mask_text(v)}" for k, v in host.proxies)))
    return out


def _os(host: Host) -> Finding:
    if host.os == "linux" and host.libc == "musl":
        return Finding("host.os", WARNING, f"{host.describe()}: musl has far fewer binary wheels than glibc",
                       "expect source builds; a glibc-based image (Debian, Ubuntu) avoids them")
    if host.os == "windows":
        return Finding("host.os", WARNING, f"{host.describe()}: several NLP tools ship no Windows wheels",
                       "WSL2 gives you the Linux wheels")
    return Finding("host.os", OK, host.describe())


def _pythons(host: Host, today: dt.date) -> list[Finding]:
    if not host.pythons:
        return [Finding("host.python", FAILURE, "no Python interpreter found",
                        "install one: uv python install 3.12, pyenv install 3.12, or your OS packages")]
    out = []
    for p in host.pythons:
        eol = cpython.PYTHON_EOL.get(p.minor)
        if not cpython.can_host_env(p.version):
            out.append(Finding(f"host.python.{p.version}", WARNING, f"Python {p.version} ({p.source}: {p.path}) "
                               "is too old for any env", "nothing to do unless you need it; nlpsetup ignores it"))
        elif eol and dt.date.fromisoformat(eol) <= today:
            out.append(Finding(f"host.python.{p.version}", WARNING, f"Python {p.version} ({p.source}) reached end "
                               f"of life on {eol}", "fine for legacy recipes that need it; prefer a newer one otherwise"))
        else:
            out.append(Finding(f"host.python.{p.version}", OK, f"Python {p.version} ({p.source}: {p.path})"))
    return out


def _tools(host: Host, versions: dict[str, str | None]) -> list[Finding]:
    out = []
    for name in ("pip", "virtualenv", "uv"):
        v = versions.get(name)
        status = OK if v or name == "pip" else (WARNING if name == "uv" else FAILURE)
        fix = {"uv": "pip install 'nlpsetup[uv]' for faster installs", "virtualenv": "pip install virtualenv"}
        out.append(Finding(f"host.{name}", status, f"{name} {v}" if v else f"{name} not found",
                           "" if status == OK else fix.get(name, "")))
    conda = [t for t in ("conda", "mamba", "micromamba") if host.tool(t)]
    out.append(Finding("host.conda", OK, f"conda tools: {', '.join(conda)}" if conda
                       else "no conda, mamba or micromamba (needed only for --via conda)"))
    out.append(Finding("host.git", OK if host.tool("git") else WARNING,
                       f"git: {host.tool('git')}" if host.tool("git") else "git not found",
                       "" if host.tool("git") else "install git (cookiecutter templates and AutoNLP uploads use it)"))
    out.append(Finding("host.git-lfs", OK if host.tool("git-lfs") else WARNING,
                       f"git-lfs: {host.tool('git-lfs')}" if host.tool("git-lfs") else "git-lfs not found",
                       "" if host.tool("git-lfs") else "AutoNLP uploads need it: apt-get install git-lfs"))
    cc = next((host.tool(t) for t in ("cc", "gcc", "clang") if host.tool(t)), None)
    out.append(Finding("host.compiler", OK if cc else WARNING, f"C compiler: {cc}" if cc else "no C compiler",
                       "" if cc else "old-Python variants build packages from source: apt-get install build-essential"))
    return out


def _gpu(host: Host) -> list[Finding]:
    g = host.gpu
    if host.os == "macos":
        return [Finding("host.gpu", OK, "macOS: PyTorch uses CPU (or MPS) builds" +
                        (" on Apple Silicon" if host.apple_silicon else ""))]
    if not g.driver:
        if g.source == "nvidia-smi" and g.error:  # the tool is there but the driver does not answer
            return [Finding("host.gpu", WARNING, f"NVIDIA driver present but unusable: {g.error}",
                            "fix the driver (a reboot after a driver update often does), or use --compute cpu")]
        return [Finding("host.gpu", OK, f"no NVIDIA GPU in use ({g.error or 'no driver'}): CPU builds of PyTorch")]
    try:
        cudas = compute.cuda_versions_for_driver(g.driver, host.os)
    except ValueError:
        cudas = []
    out = [Finding("host.gpu.driver", OK if cudas else WARNING,
                   f"NVIDIA driver {g.driver}: runs CUDA {' '.join(cudas[:4]) + (' ...' if len(cudas) > 4 else '')}"
                   if cudas else f"NVIDIA driver {g.driver} runs no CUDA version PyTorch builds for",
                   "" if cudas else "update the driver (CUDA 12 builds need >= 525.60.13)")]
    floor = tuple(int(x) for x in NEWEST_CUDA_MIN_SM.split("."))
    for i, card in enumerate(g.gpus):
        cc = card.compute_capability
        if cc is None:
            out.append(Finding(f"host.gpu.{i}", WARNING, f"{card.name}: compute capability unknown "
                               "(this driver's nvidia-smi cannot report it)", "update the driver to check it"))
        elif tuple(int(x) for x in cc.split(".")) < floor:
            out.append(Finding(f"host.gpu.{i}", WARNING, f"{card.name} is sm_{cc.replace('.', '')}: the newest "
                               f"CUDA builds (cu128+) need sm_75 or newer", "nlpsetup picks cu126 or older for it"))
        else:
            out.append(Finding(f"host.gpu.{i}", OK, f"{card.name} (sm_{cc.replace('.', '')})"))
    return out


def _disk(host: Host, biggest_mb: int) -> Finding:
    free = host.disk_free_bytes
    if free is None:
        return Finding("host.disk", WARNING, "free disk unknown where envs live", "check NLPSETUP_HOME")
    free_mb = free // 2**20
    if free_mb < 1024:
        return Finding("host.disk", FAILURE, f"only {free_mb} MB free where envs live",
                       "free space, or point NLPSETUP_HOME at a larger disk")
    if free_mb < biggest_mb:
        return Finding("host.disk", WARNING, f"{free_mb} MB free; the biggest recipes need about {biggest_mb} MB",
                       "free space before installing the big ones (a CUDA PyTorch env is several GB)")
    return Finding("host.disk", OK, f"{free_mb:,} MB free where envs live")


def probe_early(host: Host, probe: Callable[[str], tuple[bool, str]]) -> Callable[[str], tuple[bool, str]]:
    """Start probing the host's index now, in the background (it is network time that the env
    checks can overlap); the returned probe answers with that result."""
    url = _index_url(host)
    result = beside(lambda: probe(url))
    return lambda u: result() if u == url else probe(u)


def _index_url(host: Host) -> str:
    return host.index.index_url or "https://pypi.org/simple"


def _index(host: Host, probe: Callable[[str], tuple[bool, str]] | None) -> Finding:
    url = _index_url(host)
    shown = mask_text(url) + (f" (+{len(host.index.extra_index_urls)} extra)" if host.index.extra_index_urls else "")
    if probe is None:
        return Finding("host.index", OK, f"package index {shown} (not probed: --quick)")
    ok, why = probe(url)
    if ok:
        return Finding("host.index", OK, f"package index {shown} answers")
    return Finding("host.index", FAILURE, f"package index {shown} does not answer: {why}",
                   "check your network, proxy variables (HTTPS_PROXY) and PIP_INDEX_URL / pip.conf")
