"""`nlpsetup doctor TOOL`: each constraint of each variant of one recipe against this host, as
findings: the "why not" answer in one place. This module never prints."""

from __future__ import annotations

from pathlib import Path

from nlpsetup.doctor.finding import FAILURE, OK, WARNING, Finding
from nlpsetup.facts.host import Host
from nlpsetup.recipes.model import Recipe, fmt_spec
from nlpsetup.resolve import model as resolve
from nlpsetup.resolve import resolve as resolver


def tool_checks(recipe: Recipe, host: Host) -> list[Finding]:
    """Each constraint of each variant against this host: the 'why not' answer in one place.
    A variant's unmet constraint is a failure only when no variant fits (else a warning)."""
    chosen = resolver.resolve(recipe, host, resolve.Request(tool=resolve.ToolRequest(recipe.name)),
                              envs_root=Path("/nonexistent"))
    if isinstance(chosen, resolve.Plan):
        head = Finding(f"{recipe.name}.choice", OK, f"this host gets variant {chosen.variant.id} on Python "
                       f"{chosen.python.version}: nlpsetup install {recipe.name}")
    else:
        head = Finding(f"{recipe.name}.choice", FAILURE, chosen.headline, "; ".join(chosen.suggestions[:2]))
    out = [head]
    for v in recipe.variants:
        req = resolve.Request(tool=resolve.ToolRequest(recipe.name), variant=v.id)
        result = resolver.resolve(recipe, host, req, envs_root=Path("/nonexistent"))
        reasons = {r.code: r for rej in getattr(result, "rejected", ()) for r in rej.reasons}
        prefix = f"{recipe.name}.{v.id}"
        out.append(_constraint(prefix, v.id, reasons, "platform", f"platform {host.os}-{host.arch} supported",
                               ("arch",)))
        if v.glibc:
            out.append(_constraint(prefix, v.id, reasons, "glibc",
                                   f"glibc >= {v.glibc}: this host has {host.libc_version or 'n/a'}", ()))
        py = result.python.version if isinstance(result, resolve.Plan) else None
        spec = fmt_spec(v.python)
        out.append(_constraint(prefix, v.id, reasons, "python",
                               f"Python {py} fits {spec}" if py else f"Python {spec}", ("interpreter",)))
        if isinstance(result, resolve.Plan) and result.compute is not None:
            out.append(Finding(f"{prefix}.compute", OK, f"variant {v.id}: {result.compute.backend} build "
                               f"({result.compute.reason})"))
        for tool, why in v.tools:
            found = host.tool(tool)
            out.append(Finding(f"{prefix}.tool.{tool}", OK if found else WARNING,
                               f"variant {v.id}: {tool} {'found' if found else 'not found'} ({why})",
                               "" if found else f"install {tool}"))
    return _soften(out, isinstance(chosen, resolve.Plan))


def _constraint(prefix: str, vid: str, reasons: dict, code: str, ok_text: str, fallback: tuple[str, ...]) -> Finding:
    for c in (code, *fallback):
        if c in reasons:
            return Finding(f"{prefix}.{code}", FAILURE, f"variant {vid}: {reasons[c].message}", reasons[c].fix)
    return Finding(f"{prefix}.{code}", OK, f"variant {vid}: {ok_text}")


def _soften(findings: list[Finding], fits: bool) -> list[Finding]:
    from dataclasses import replace

    return [replace(f, status=WARNING) if fits and f.status == FAILURE and not f.id.endswith(".choice") else f
            for f in findings]
