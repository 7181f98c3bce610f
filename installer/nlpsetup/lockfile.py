"""Locks: an env's exact pins with the interpreter and platform it was built for, and the plan
that builds the same env again on a host that can match it."""

from __future__ import annotations

from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nlpsetup import resolve
from nlpsetup.errors import NlpsetupError
from nlpsetup.host import Host
from nlpsetup.recipes import TORCH_FAMILY, Smoke, Variant

KIND = "nlpsetup-lock"
SCHEMA_VERSION = 1
# Installer tools are set up by the plan's own steps, not pinned from the lock.
_TOOLING = {"pip", "wheel"}


def from_manifest(data: dict) -> dict:
    host = data.get("host", {})
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "nlpsetup_version": data.get("nlpsetup_version"),
        "env": data["env"]["name"],
        "tools": [{k: t[k] for k in ("name", "request", "variant", "recipe_digest", "smoke") if k in t}
                  for t in data.get("tools", [])],
        "python": {"version": data["interpreter"]["version"],
                   "implementation": data["interpreter"].get("implementation", "CPython")},
        "platform": {"os": host.get("os"), "arch": host.get("arch"), "libc": host.get("libc"),
                     "libc_version": host.get("libc_version")},
        "compute": data.get("compute", {}),
        "install_env": data.get("install_env", {}),
        "distributions": dict(sorted(data.get("distributions", {}).items(), key=lambda kv: kv[0].lower())),
    }


def of_env(env_path: Path) -> dict:
    """The lock of an installed env, read from its manifest."""
    from nlpsetup import manifest

    try:
        return from_manifest(manifest.read(env_path))
    except (manifest.ManifestError, KeyError, TypeError, AttributeError) as exc:
        raise NlpsetupError(f"cannot lock {env_path.name}: {exc}",
                            hint=f"rebuild it: nlpsetup install ... --name {env_path.name} --force") from None


def write(output: str, data: dict) -> str:
    from nlpsetup.files import write_json_atomic

    write_json_atomic(Path(output), data)
    return f"wrote {output} ({len(data['distributions'])} distributions, Python {data['python']['version']})"


def check(lock: object, source: str) -> dict:
    if not isinstance(lock, dict) or lock.get("kind") != KIND:
        raise NlpsetupError(f"{source} is not an nlpsetup lock", hint="write one with: nlpsetup lock ENV -o FILE")
    for key in ("python", "platform", "distributions", "tools"):
        if key not in lock:
            raise NlpsetupError(f"{source}: lock has no {key!r}", hint="write it again with: nlpsetup lock ENV -o FILE")
    return lock


def plan(lock: dict, host: Host, *, envs_root: Path, env_name: str | None) -> resolve.Plan | resolve.Refusal:
    tools = lock["tools"] or [{"name": lock.get("env", "env"), "variant": "lock"}]
    name = tools[0]["name"]
    want = lock["platform"]
    reasons = []
    if want.get("os") and want["os"] != host.os:
        reasons.append(resolve.Reason("platform", f"was built for {want['os']}, this host is {host.os}",
                                      f"use a {want['os']} machine, or install the tool instead of the lock"))
    if want.get("arch") and want["arch"] != host.arch:
        reasons.append(resolve.Reason("arch", f"was built for {want['arch']}, this host is {host.arch}", ""))
    if want.get("libc") == "glibc" and host.libc == "glibc" and want.get("libc_version") and host.libc_version:
        if Version(host.libc_version) < Version(want["libc_version"]):
            reasons.append(resolve.Reason("glibc", f"was built on glibc {want['libc_version']}; this host has "
                                          f"{host.libc_version}, and its wheels may need the newer one", ""))
    version = lock["python"]["version"]
    minor = ".".join(version.split(".")[:2])
    smoke_data = tools[0].get("smoke", {})
    smoke = Smoke(imports=tuple(smoke_data.get("imports", ())), code=smoke_data.get("code", ""),
                  commands=tuple(tuple(c) for c in smoke_data.get("commands", ())),
                  timeout=int(smoke_data.get("timeout", 300)), env=tuple(smoke_data.get("env", {}).items()))
    dists = {canonicalize_name(k): (k, v) for k, v in lock["distributions"].items()}
    torch = [f"{dists[n][0]}=={dists[n][1]}" for n in TORCH_FAMILY if n in dists]
    packages = tuple(f"{k}=={v}" for key, (k, v) in sorted(dists.items())
                     if key not in _TOOLING and key not in TORCH_FAMILY and _is_version(v))
    variant = Variant(
        id=f"lock:{tools[0].get('variant', '?')}", python=SpecifierSet(f"=={minor}.*"),
        packages=packages or ("pip",), smoke=smoke, env=tuple(lock.get("install_env", {}).items()),
    )
    if reasons:
        return resolve.Refusal(tool=name, request=f"--from-lock {lock.get('env')}",
                               headline=f"this host cannot rebuild the locked env {lock.get('env')}.",
                               rejected=(resolve.Rejected(variant.id, tuple(reasons)),),
                               suggestions=tuple(r.fix for r in reasons if r.fix))
    recipe = _LockRecipe(name, variant)
    req = resolve.Request(tool=resolve.ToolRequest(name), python=None, env_name=env_name or lock.get("env"))
    result = resolve.resolve(recipe, host, req, envs_root=envs_root)
    if isinstance(result, resolve.Refusal):
        return result
    steps = list(result.steps)
    install = steps[-1]
    head = install.argv[:4]
    steps[-1] = resolve.Step("install", (*head, "--no-deps", *packages),
                             f"install the {len(packages)} locked distributions", env=install.env)
    compute = lock.get("compute", {})
    index = compute.get("index")
    if torch:
        source = ("--index-url", index) if index and index.startswith(("http", "file")) and "****" not in index else ()
        steps.insert(-1, resolve.Step("framework", (*head, "--no-deps", *torch, *source),
                                      f"install {', '.join(torch)} ({compute.get('backend', 'cpu')} build)",
                                      env=install.env))
    from dataclasses import replace

    return replace(result, steps=tuple(steps), constraints=(), tool=name, request=f"--from-lock ({name})")


def _is_version(v: str) -> bool:
    try:
        Version(v)
        return True
    except InvalidVersion:
        return False


class _LockRecipe:
    """The minimal recipe shape resolve() needs, for a lock's single variant."""

    def __init__(self, name: str, variant: Variant):
        self.name, self.variants, self.digest, self.status = name, (variant,), "lock", "active"

    def variant(self, variant_id: str):
        return self.variants[0] if variant_id == self.variants[0].id else None
