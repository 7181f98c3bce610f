"""Locks: an env's exact pins (`name==version`, each with the sha256 of every file the index
publishes for that release) with the interpreter and platform it was built for; reading a lock
someone handed us (JSON, or a PEP 751 pylock.toml) without ever crashing on it; and the plan that
builds the same env again, installing with `--require-hashes`."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import replace
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nlpsetup.base.errors import EXIT_FAILED, NlpsetupError
from nlpsetup.base.files import read_regular, write_atomic, write_text_atomic
from nlpsetup.base.redact import MASK, mask_text
from nlpsetup.envs import manifest
from nlpsetup.envs.names import check_env_name
from nlpsetup.facts.host import Host
from nlpsetup.recipes.model import TORCH_FAMILY, Smoke, Variant
from nlpsetup.recipes.schema import forbidden_env
from nlpsetup.resolve import model as resolve
from nlpsetup.resolve import resolve as resolver
from nlpsetup.share import pylock

KIND = "nlpsetup-lock"
SCHEMA_VERSION = 2  # 2: hashes and indexes; 1 (no hashes) is still read, with a warning
# Installer tools are set up by the plan's own steps, not pinned from the lock.
_TOOLING = {"pip", "wheel"}
# What an env's creator may seed (virtualenv seeds setuptools below Python 3.12): locked with its
# hashes when its index has it, else left to the creator, as pip is (a private index may lack it).
_SEEDED = {"setuptools"}
MAX_BYTES = 16 * 1024 * 1024  # a lock of thousands of packages is well under 1 MB
# PEP 508 names: what a lock key may be. `pkg @ https://...` or `pkg; marker` are not names.
_DIST_NAME = re.compile(r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$")
_TOOL_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")  # as recipe names
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_FIELDS = {"kind", "schema_version", "nlpsetup_version", "env", "tools", "python", "platform", "compute",
           "install_env", "distributions", "hashes", "indexes", "as_of"}
_HINT = "write it again with: nlpsetup lock ENV -o FILE (or nlpsetup export ENV --format pylock)"


# --- writing -------------------------------------------------------------------------------------


def from_manifest(data: dict, hashes: dict[str, list[str]] | None = None, indexes: list[str] = ()) -> dict:
    host = data.get("host", {})
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "nlpsetup_version": data.get("nlpsetup_version"),
        "env": data["env"]["name"],
        "tools": [{k: t[k] for k in ("name", "request", "variant", "recipe_digest", "main", "smoke") if k in t}
                  for t in data.get("tools", [])],
        "python": {"version": data["interpreter"]["version"],
                   "implementation": data["interpreter"].get("implementation", "CPython")},
        "platform": {"os": host.get("os"), "arch": host.get("arch"), "libc": host.get("libc"),
                     "libc_version": host.get("libc_version")},
        "compute": data.get("compute", {}),
        "install_env": data.get("install_env", {}),
        "distributions": dict(sorted(data.get("distributions", {}).items(), key=lambda kv: kv[0].lower())),
        "hashes": dict(sorted((hashes or {}).items(), key=lambda kv: kv[0].lower())),
        "indexes": [mask_text(u) for u in indexes],
        "as_of": data.get("as_of"),  # the cutoff the env was resolved under (None: latest)
    }


def sources_for(data: dict, environ=os.environ):
    """Where the env's files came from: this shell's pip settings (the mirror the env was built
    through applies again) and the torch index the manifest names, its credentials restored."""
    from nlpsetup.facts import host
    from nlpsetup.index import releases as indexfiles

    torch = unmask((data.get("compute") or {}).get("index"), environ)
    return indexfiles.Sources.from_settings(host.pip_index_settings(dict(environ)), torch)


def unmask(url: str | None, environ=os.environ) -> str | None:
    """A masked index URL from a lock, with the credentials the user's NLPSETUP_TORCH_INDEX_URL holds
    again (the mirror setting applies again); None for no URL or one nothing here can unlock."""
    if not url or not url.startswith(("http://", "https://", "file://")):
        return None
    if MASK not in url:
        return url
    mirror = environ.get("NLPSETUP_TORCH_INDEX_URL", "").rstrip("/")
    if mirror and url.startswith(mask_text(mirror)):
        return mirror + url[len(mask_text(mirror)):]
    return None


# The one index a lock may name that the user need not have configured: PyTorch's own, over https.
PYTORCH_INDEX = "https://download.pytorch.org"
_INDEX_VARS = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_INDEX", "NLPSETUP_TORCH_INDEX_URL")


def configured_indexes(environ=os.environ) -> list[str]:
    """Every index this user configured for pip (config files, PIP_*), uv (UV_*) or nlpsetup."""
    from nlpsetup.facts import host

    settings = host.pip_index_settings(dict(environ))
    urls = [u for u in (settings.index_url, *settings.extra_index_urls) if u]
    for var in _INDEX_VARS:
        for item in environ.get(var, "").split():
            name, eq, url = item.partition("=")  # UV_INDEX entries may be NAME=URL
            urls.append(url if eq and "://" not in name else item)
    return urls


def check_index(url: str, environ=os.environ) -> None:
    """A lock may send an install only to an index the user configured, or to PyTorch's own: a lock is
    input from someone else, and its index would choose the bytes that run (hashes from the same file
    prove nothing). Exit 2 otherwise, naming the fix."""
    from urllib.parse import urlsplit

    shown = mask_text(url).rstrip("/")  # the lock's is masked: compare masked with masked
    allowed = [PYTORCH_INDEX, *(mask_text(u).rstrip("/") for u in configured_indexes(environ))]
    if any(shown == a or shown.startswith(a + "/") for a in allowed):
        return
    parts = urlsplit(shown)
    plain = (" over plain http" if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost")
             else "")
    raise NlpsetupError(f"the lock's PyTorch index {shown} is not an index you configured{plain}: a lock may name "
                        f"only your own indexes or PyTorch's ({PYTORCH_INDEX})",
                        hint="if you trust that index, configure it yourself (NLPSETUP_TORCH_INDEX_URL=URL of its "
                             "base, or PIP_EXTRA_INDEX_URL) and run again; else ask for a lock made against PyTorch's index")


def release_files(data: dict, sources) -> dict:
    """name -> the index's files of the installed release, for every distribution the env holds.
    Raises (exit 1) when a release cannot be found: a lock without its hashes is not a lock."""
    from nlpsetup.index import releases as indexfiles

    dists = {k: v for k, v in data.get("distributions", {}).items() if canonicalize_name(k) not in _TOOLING}
    files, errors = indexfiles.lookup(dists, sources)
    missing = [f"{k}=={v}" for k, v in dists.items() if not files.get(k) and canonicalize_name(k) not in _SEEDED]
    if missing:
        where = ", ".join(mask_text(u) for u in (*sources.indexes, *sources.find_links))
        why = next(iter(errors.values()), f"not on {where}")
        refused = ": HTTP 401" in why or ": HTTP 403" in why  # the index is right; its credentials are not
        raise NlpsetupError(f"cannot hash {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}: {why}",
                            hint=("give nlpsetup the index's credentials the way the installer got them (the "
                                  "index URL, ~/.netrc, or UV_KEYRING_PROVIDER=subprocess with `keyring`)") if refused
                            else "lock and export read the hashes from the index the env was built from: set "
                                 "PIP_INDEX_URL (and NLPSETUP_TORCH_INDEX_URL) as when it was built",
                            exit_code=EXIT_FAILED)
    return {k: fs for k, fs in files.items() if fs}


def of_env(env_path: Path, environ=os.environ, as_of: str | None = None) -> dict:
    """The lock of an installed env: its manifest, with the hashes of every installed release.
    With `as_of` (a date), every release must have been on the index by then (exit 1 naming those
    that were not); the lock then records that date (`latest`: none)."""
    from nlpsetup.resolve import cutoff

    data = lockable_manifest(env_path)
    sources = sources_for(data, environ)
    files = release_files(data, sources)
    if as_of is not None:
        recorded = cutoff.from_dict(data.get("as_of"))
        cut = cutoff.choose(None, as_of, recorded.exempt if recorded else ())
        if cut is not None and (late := cutoff.late_releases(files, cut)):
            raise NlpsetupError(f"{env_path.name} is not as of {cut.date}: {'; '.join(late[:5])}",
                                hint="upgrade it within the date first: nlpsetup upgrade ENV --as-of DATE",
                                exit_code=EXIT_FAILED)
        data = {**data, "as_of": cut.to_dict() if cut else None}
    hashes = {k: sorted({f"sha256:{f.sha256}" for f in fs}) for k, fs in files.items()}
    indexes = [*((sources.torch_index,) if sources.torch_index else ()), *sources.indexes, *sources.find_links]
    try:
        return from_manifest(data, hashes, indexes)
    except (KeyError, TypeError, AttributeError) as exc:
        raise _unlockable(env_path, exc) from None


def lockable_manifest(env_path: Path) -> dict:
    """An env's manifest (envs.manifest.read) that holds all a lock is made from; else one line,
    `cannot lock NAME: why` (exit 2), naming what to rebuild."""
    try:
        data = manifest.read(env_path)
        from_manifest(data)  # fails early on a manifest that lacks what a lock needs
        return data
    except (manifest.ManifestError, KeyError, TypeError, AttributeError) as exc:
        raise _unlockable(env_path, exc) from None


def _unlockable(env_path: Path, exc: Exception) -> NlpsetupError:
    return NlpsetupError(f"cannot lock {env_path.name}: {exc}",
                         hint=f"rebuild it: nlpsetup install ... --name {env_path.name} --force")


def write(output: str, data: dict) -> str:
    write_text_atomic(Path(output), json.dumps(data, indent=2) + "\n")  # a user's path: /dev/null stays a device
    return f"wrote {output} ({len(data['distributions'])} distributions, Python {data['python']['version']})"


# --- reading what a user handed us ------------------------------------------------------------------


def read_text(path: str | Path, what: str = "--from-lock") -> str:
    """A user's file as text, or one line naming it: never blocks on a FIFO or reads /dev/zero."""
    try:
        raw = read_regular(path, MAX_BYTES)
    except OSError as exc:  # NotAFile too: a FIFO, a device, a folder, an oversize file
        raise NlpsetupError(f"{what} {path}: {exc.strerror or exc}", hint=_HINT) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NlpsetupError(f"{what} {path} is not UTF-8 text", hint=_HINT) from None


def load(path: str | Path, what: str = "--from-lock") -> dict:
    """A checked lock from a JSON lock or a PEP 751 pylock.toml."""
    import json

    text = read_text(path, what)
    source = f"{what} {path}"
    if Path(path).suffix == ".toml":
        fields = pylock.to_lock(pylock.parse(text, source), source)
        return check({"kind": KIND, "schema_version": SCHEMA_VERSION, **fields}, source)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise NlpsetupError(f"{source} is not JSON: {str(exc)[:200]}", hint=_HINT) from None
    return check(data, source)


def _bad(source: str, field: str, problem: str) -> NlpsetupError:
    return NlpsetupError(f"{source}: field {field!r} {problem}", hint=_HINT)


def _str_or_none(value, source, field):
    if value is not None and not isinstance(value, str):
        raise _bad(source, field, f"must be a string, not {type(value).__name__}")


def _str_dict(value, source, field) -> dict:
    if not isinstance(value, dict):
        raise _bad(source, field, f"must be a table of strings, not {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(v, str):
            raise _bad(source, f"{field}.{k}", f"must be a string, not {type(v).__name__}")
    return value


def check(lock: object, source: str) -> dict:
    """The lock, if every field has the type and the form it must; else exit 2 naming the field."""
    if not isinstance(lock, dict) or lock.get("kind") != KIND:
        raise NlpsetupError(f"{source} is not an nlpsetup lock", hint=_HINT)
    if foreign := sorted(str(k) for k in lock if k not in _FIELDS):
        raise _bad(source, foreign[0], "is not a lock field")
    version = lock.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise _bad(source, "schema_version", f"must be 1 to {SCHEMA_VERSION}, not {version!r}")
    for key in ("python", "platform", "distributions", "tools"):
        if key not in lock:
            raise _bad(source, key, "is missing")
    _str_or_none(lock.get("env"), source, "env")
    if lock.get("env"):
        try:
            check_env_name(lock["env"])
        except NlpsetupError as exc:
            raise _bad(source, "env", exc.message) from None
    python = lock["python"]
    if not isinstance(python, dict) or not isinstance(python.get("version"), str):
        raise _bad(source, "python.version", "must be a Python version such as 3.12.4")
    try:
        Version(python["version"])
    except InvalidVersion:
        raise _bad(source, "python.version", f"{python['version'][:40]!r} is not a version") from None
    _str_or_none(python.get("implementation"), source, "python.implementation")
    if not isinstance(lock["platform"], dict):
        raise _bad(source, "platform", "must be a table")
    for k in ("os", "arch", "libc", "libc_version"):
        _str_or_none(lock["platform"].get(k), source, f"platform.{k}")
    compute = lock.get("compute", {})
    if not isinstance(compute, dict):
        raise _bad(source, "compute", "must be a table")
    for k in ("backend", "reason", "index"):
        _str_or_none(compute.get(k), source, f"compute.{k}")
    for k in _str_dict(lock.get("install_env", {}), source, "install_env"):
        if forbidden_env(k):  # the recipes' own rule: a lock may not set what a recipe may not
            raise _bad(source, f"install_env.{k}", "may not be set by a lock: it would redirect the installer")
    if lock.get("as_of") is not None:
        from nlpsetup.resolve import cutoff

        if cutoff.from_dict(lock["as_of"]) is None:
            raise _bad(source, "as_of", "must be a table with a date (YYYY-MM-DD), or null")
    _check_tools(lock["tools"], source)
    dists = _str_dict(lock["distributions"], source, "distributions")
    for name, v in dists.items():
        if not _DIST_NAME.fullmatch(name):
            raise _bad(source, f"distributions.{name[:60]}", "is not a distribution name (a lock pins name==version)")
        try:
            Version(v)
        except InvalidVersion:
            raise _bad(source, f"distributions.{name}", f"{v[:40]!r} is not a version") from None
    hashes = lock.get("hashes", {})
    if not isinstance(hashes, dict):
        raise _bad(source, "hashes", "must be a table")
    for name, hs in hashes.items():
        if name not in dists:
            raise _bad(source, f"hashes.{name[:60]}", "names no distribution of the lock")
        if not isinstance(hs, list) or not hs or not all(isinstance(h, str) and _SHA256.fullmatch(h) for h in hs):
            raise _bad(source, f"hashes.{name}", "must be a list of sha256:<64 hex digits>")
    if version >= 2:
        if unhashed := [n for n in dists if canonicalize_name(n) not in _TOOLING | _SEEDED and n not in hashes]:
            raise _bad(source, f"hashes.{unhashed[0]}", "is missing: every locked release carries its hashes")
    indexes = lock.get("indexes", [])
    if not isinstance(indexes, list) or not all(isinstance(u, str) for u in indexes):
        raise _bad(source, "indexes", "must be a list of URLs")
    return lock


def _check_tools(tools, source: str) -> None:
    if not isinstance(tools, list):
        raise _bad(source, "tools", "must be a list")
    for i, t in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise _bad(source, where, "must be a table with a name")
        if not _TOOL_NAME.fullmatch(t["name"]):
            raise _bad(source, f"{where}.name", "is not a tool name")
        for k in ("request", "variant", "recipe_digest", "main"):
            _str_or_none(t.get(k), source, f"{where}.{k}")
        smoke = t.get("smoke", {})
        if not isinstance(smoke, dict):
            raise _bad(source, f"{where}.smoke", "must be a table")
        imports, code, commands = smoke.get("imports", []), smoke.get("code", ""), smoke.get("commands", [])
        if not isinstance(imports, list) or not all(isinstance(x, str) for x in imports):
            raise _bad(source, f"{where}.smoke.imports", "must be a list of module names")
        _str_or_none(code, source, f"{where}.smoke.code")
        if not isinstance(commands, list) or not all(
                isinstance(c, list) and c and all(isinstance(a, str) for a in c) for c in commands):
            raise _bad(source, f"{where}.smoke.commands", "must be a list of argument lists")
        timeout = smoke.get("timeout", 300)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 86400:
            raise _bad(source, f"{where}.smoke.timeout", "must be whole seconds, 1 to 86400")
        _str_dict(smoke.get("env", {}), source, f"{where}.smoke.env")


# --- the plan that rebuilds it -------------------------------------------------------------------


def _req_file(req_dir: Path, text: str) -> str:
    """The requirements file a step installs from: content-addressed under the cache, so that the
    plan stays an argument list and the same lock always names the same file."""
    req_dir.mkdir(parents=True, exist_ok=True)
    path = req_dir / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.txt"
    if not path.exists():
        write_atomic(path, text)  # a torn file would still be found by its name
    return str(path)


def plan(lock: dict, host: Host, *, envs_root: Path, env_name: str | None, req_dir: Path,
         find_links: str | None = None, environ=os.environ) -> resolve.Plan | resolve.Refusal:
    """The plan that rebuilds the locked env. `find_links` (a bundle's wheel folder) installs with no
    index at all; else the torch family comes from the lock's torch index, its credentials from the
    user's NLPSETUP_TORCH_INDEX_URL, and the rest from this shell's pip settings."""
    tools = lock["tools"] or [{"name": lock.get("env") or "env", "variant": "lock"}]
    name = tools[0]["name"]
    want = lock["platform"]
    reasons = []
    if want.get("os") and want["os"] != host.os:
        reasons.append(resolve.Reason("platform", f"was built for {want['os']}, this host is {host.os}",
                                      f"use a {want['os']} machine, or install the tool instead of the lock"))
    if want.get("arch") and want["arch"] != host.arch:
        reasons.append(resolve.Reason("arch", f"was built for {want['arch']}, this host is {host.arch}", ""))
    if want.get("libc") == "glibc" and host.libc == "glibc" and want.get("libc_version") and host.libc_version:
        try:
            older = Version(host.libc_version) < Version(want["libc_version"])
        except InvalidVersion:
            older = False
        if older:
            reasons.append(resolve.Reason("glibc", f"was built on glibc {want['libc_version']}; this host has "
                                          f"{host.libc_version}, and its wheels may need the newer one", ""))
    version = lock["python"]["version"]
    minor = ".".join(version.split(".")[:2])
    smoke_data = tools[0].get("smoke", {})
    smoke = Smoke(imports=tuple(smoke_data.get("imports", ())), code=smoke_data.get("code") or "",
                  commands=tuple(tuple(c) for c in smoke_data.get("commands", ())),
                  timeout=int(smoke_data.get("timeout", 300)), env=tuple(smoke_data.get("env", {}).items()))
    hashes = lock.get("hashes", {})
    dists = {k: v for k, v in lock["distributions"].items() if canonicalize_name(k) not in _TOOLING
             and not (canonicalize_name(k) in _SEEDED and hashes and k not in hashes)}
    torch = {k: v for k, v in dists.items() if canonicalize_name(k) in TORCH_FAMILY and not find_links}
    rest = {k: v for k, v in dists.items() if k not in torch}
    variant = Variant(
        id=f"lock:{tools[0].get('variant', '?')}", python=SpecifierSet(f"=={minor}.*"),
        packages=tuple(f"{k}=={v}" for k, v in sorted(rest.items())) or ("pip",), smoke=smoke,
        env=tuple(lock.get("install_env", {}).items()),
        main=tools[0].get("main") or "",  # the tool's own distribution (uptool for trusty); older locks lack it
    )
    if reasons:
        return resolve.Refusal(tool=name, request=f"--from-lock {lock.get('env')}",
                               headline=f"this host cannot rebuild the locked env {lock.get('env')}.",
                               rejected=(resolve.Rejected(variant.id, tuple(reasons)),),
                               suggestions=tuple(r.fix for r in reasons if r.fix))
    recipe = _LockRecipe(name, variant)
    req = resolve.Request(tool=resolve.ToolRequest(name), python=None, env_name=env_name or lock.get("env"))
    result = resolver.resolve(recipe, host, req, envs_root=envs_root)
    if isinstance(result, resolve.Refusal):
        return result
    steps = list(result.steps)
    install = steps[-1]
    head = install.installer
    hashed = bool(hashes)
    checking = ("--require-hashes",) if hashed else ()
    offline = ("--no-index", "--find-links", find_links) if find_links else ()
    steps[-1] = resolve.Step("install", (*head, "--no-deps", *offline, *checking, "-r",
                                         _req_file(req_dir, pylock.requirements(rest, hashes))),
                             (f"install {len(rest)} wheels from the bundle" if find_links
                              else f"install the {len(rest)} locked distributions")
                             + (", checking their hashes" if hashed else ""),
                             env=install.env)
    warnings = list(result.warnings)
    if not hashed:
        warnings.append("this lock has no hashes (an older nlpsetup wrote it): installed without hash checking; "
                        "write it again with nlpsetup lock ENV")
    index = None
    if torch:
        compute = lock.get("compute", {})
        locked = compute.get("index")
        index = unmask(locked, environ)
        if locked and MASK in locked and index is None:
            raise NlpsetupError(f"the lock's PyTorch index {locked} needs its credentials",
                                hint="set NLPSETUP_TORCH_INDEX_URL to that mirror, with its credentials, as when "
                                     "the env was built")
        if index is not None:
            check_index(index, environ)
        # The index travels in the environment, never in argv (ps shows argv to every user).
        source = (("PIP_INDEX_URL", index), ("UV_DEFAULT_INDEX", index)) if index else ()
        steps.insert(-1, resolve.Step("framework", (*head, "--no-deps", *checking, "-r",
                                                    _req_file(req_dir, pylock.requirements(torch, hashes))),
                                      f"install {', '.join(f'{k}=={v}' for k, v in torch.items())} "
                                      f"({compute.get('backend') or 'cpu'} build)", env=(*install.env, *source)))
    return replace(result, steps=tuple(steps), constraints=(), tool=name, request=f"--from-lock ({name})",
                   torch_index=index, warnings=tuple(warnings))


class _LockRecipe:
    """The minimal recipe shape resolve() needs, for a lock's single variant."""

    def __init__(self, name: str, variant: Variant):
        self.name, self.variants, self.digest, self.status = name, (variant,), "lock", "active"

    def variant(self, variant_id: str):
        return self.variants[0] if variant_id == self.variants[0].id else None
