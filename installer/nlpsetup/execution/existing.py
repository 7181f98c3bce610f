"""What an env already at an install's target holds, and what that decides: nothing to do (it holds
what was asked), a build in place, or a refusal without --force; and which of the old env's
additions the new env installs again.
"""

from __future__ import annotations

from pathlib import Path

from nlpsetup.base.errors import NlpsetupError
from nlpsetup.envs import manifest
from nlpsetup.envs.env import Env
from nlpsetup.recipes.model import TORCH_FAMILY
from nlpsetup.resolve.model import Plan


def already(env_path: Path, plans: list[Plan], opts) -> str | None:
    """Without --force, what an env already at the target decides: what it holds when that is
    what was asked (nothing to do); None when it may be (re)built in place (nothing there, a
    half-built env of ours, or the same holdings whose interpreter is gone); and a refusal, exit
    2, when it holds anything else (another tool, variant, Python, locked set or extras, or a
    folder nlpsetup did not build): replacing what the user did not ask to replace needs --force.
    What the env holds is compared, never the words typed (an alias, a lock of the same env).
    `opts` is the install's execute.Options (what was asked of the Python, the variants each
    request admits, and the command that retries with --force)."""
    env = Env.at(env_path)
    if not env_path.exists() and not env_path.is_symlink():
        return None
    asked = _describe([(p.tool, p.variant.id) for p in plans], plans[0].python.version)
    try:
        data = manifest.read(env_path)
    except manifest.ManifestError as exc:
        if env.marker_path.is_file() and not env.manifest_path.exists() and not env_path.is_symlink():
            return None  # a half-built env of ours (killed, or kept with --keep-failed)
        held = (f"an env whose manifest cannot be read ({exc})" if env.manifest_path.exists()
                else "files nlpsetup did not put there")
        raise _replace_refusal(env_path, held, asked, opts.retry) from None
    tools = data.get("tools", [])
    interp = data.get("interpreter", {})
    version = interp.get("version", "?")
    if not _holds(data, plans, opts):
        held = _describe([(t.get("name"), t.get("variant")) for t in tools], version)
        if data.get("additions"):
            held += f" with additions {', '.join(data['additions'])}"
        raise _replace_refusal(env_path, held, asked, opts.retry)
    if Path(interp.get("env_python", "")).exists():
        return ", ".join(f"{t.get('name')} {t.get('variant')}" for t in tools)
    return None


def _holds(data: dict, plans: list[Plan], opts) -> bool:
    """Whether an env's manifest holds what the plans ask: the same canonical tools, each on a
    variant its request admits, with the extras and version asked, on a Python the request admits
    (any, when none was asked), and for a lock exactly its locked set."""
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name as canon

    tools = {canon(str(t.get("name"))): t for t in data.get("tools", [])}
    if sorted(tools) != sorted(canon(p.tool) for p in plans):
        return False
    admits = dict(opts.admits)
    dists = {canon(k): v for k, v in data.get("distributions", {}).items()}
    for p in plans:
        held = tools[canon(p.tool)]
        variant = str(held.get("variant"))
        if variant.removeprefix("lock:") != p.variant.id.removeprefix("lock:") and variant not in admits.get(p.tool, ()):
            return False
        if p.variant.id.startswith("lock:"):
            continue
        ask, have = _request(p.request), _request(str(held.get("request")))
        if not set(ask.extras) <= set(have.extras):
            return False
        installed = dists.get(canon(p.variant.main_requirement.name))
        if ask.specifier and not (installed and SpecifierSet(ask.specifier).contains(installed, prereleases=True)):
            return False
    if opts.python_asked and not _python_admits(opts, str(data.get("interpreter", {}).get("version")), plans[0]):
        return False
    locked = {canon(n): v for p in plans if p.variant.id.startswith("lock:")
              for n, _, v in (pkg.partition("==") for pkg in p.variant.packages) if v}
    if locked:  # a lock asks for exactly its set: the installer's own tools and the torch family aside
        others = set(dists) - set(locked) - {"pip", "wheel", "setuptools"} - {canon(n) for n in TORCH_FAMILY}
        return not others and all(dists.get(n) == v for n, v in locked.items())
    return True


def _request(text: str):
    from nlpsetup.resolve.model import ToolRequest
    from nlpsetup.resolve.resolve import parse_tool

    try:
        return parse_tool(text)
    except NlpsetupError:  # "--from-lock (tool)": no extras, no version asked
        return ToolRequest(text)


def _python_admits(opts, held: str, plan: Plan) -> bool:
    if opts.python:
        from nlpsetup.facts.pythons import parse_request

        request = parse_request(opts.python)
        if not request.path:
            return request.admits(held)
    return _minor(held) == _minor(plan.python.version)  # a path, or a lock's Python


def carried(env_path: Path, plans: list[Plan]) -> tuple[list[str], list[str]]:
    """The additions of the env being replaced: (carried into the new env, dropped). They are
    carried when the new env holds the same tools; another tool's pins may not admit them."""
    from packaging.utils import canonicalize_name as canon

    try:
        data = manifest.read(env_path)
    except manifest.ManifestError:
        return [], []
    additions = list(data.get("additions") or [])
    same = sorted(canon(str(t.get("name"))) for t in data.get("tools", [])) == sorted(canon(p.tool) for p in plans)
    return (additions, []) if same else ([], additions)


def not_locked(additions, plans: list[Plan]) -> list[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name as canon

    locked = {canon(pkg.partition("==")[0]) for p in plans if p.variant.id.startswith("lock:") for pkg in p.variant.packages}
    return [a for a in additions if canon(Requirement(a).name) not in locked]


def _describe(tools, version: str) -> str:
    return f"{' + '.join(f'{t} {v}' for t, v in tools) or 'no tool'} on Python {version}"


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _replace_refusal(env_path: Path, held: str, asked: str, retry: str | None = None) -> NlpsetupError:
    how = f"to replace it (and everything in {env_path}): {retry}" if retry else \
        f"pass --force to replace it (and everything in {env_path})"
    return NlpsetupError(f"env {env_path.name} already holds {held}; you asked for {asked}",
                         hint=f"{how}; or choose another --name")
