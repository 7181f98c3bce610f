"""Turning results into text for people. JSON comes from each value's to_dict()."""

from __future__ import annotations

import functools
import json
import shlex

from nlpsetup.base.redact import escape_controls, mask_argv, mask_env, mask_text
from nlpsetup.recipes.model import Recipe, Variant, fmt_spec
from nlpsetup.resolve.model import Plan, Refusal


def _terminal(render):
    """Every text below is shown on a terminal and carries text from outside (recipes, package and
    smoke-check output): its control characters come out escaped, never obeyed, and its secrets masked."""
    @functools.wraps(render)
    def safe(*args, **kwargs):
        out = render(*args, **kwargs)
        if isinstance(out, str):
            return escape_controls(mask_text(out))
        return [(escape_controls(mask_text(t)), flag) for t, flag in out]
    return safe


@_terminal
def refusal_text(r: Refusal) -> str:
    lines = [f"nlpsetup: {r.headline}"]
    for rej in r.rejected:
        for reason in rej.reasons:
            lines.append(f"  variant {rej.variant}: {reason.message}")
    for fix in r.suggestions:
        lines.append(f"  {fix}")
    return "\n".join(lines)


@_terminal
def plan_text(p: Plan) -> str:
    v = p.variant
    py = p.python
    where = py.path or ("simulated host: a version, not a path" if py.source == "simulated" else py.source)
    lines = [
        f"{p.tool}: variant {v.id} on Python {py.version} ({where})",
        f"  env      {p.env_name} -> {p.env_path}",
        f"  backend  {p.backend}",
        f"  {p.as_of.describe() if p.as_of else 'dependencies latest (no as_of date)'}",
    ]
    if p.compute is not None:
        lines.append(f"  compute  {p.compute.backend}: {p.compute.reason}")
        if p.torch_index:
            lines.append(f"  index    {mask_text(p.torch_index)}")
    for rej in p.skipped:
        lines.append(f"  skipped  variant {rej.variant}: {'; '.join(r.message for r in rej.reasons)}")
    lines.append("  steps")
    for i, s in enumerate(p.steps, 1):
        env = " ".join(f"{k}={shlex.quote(val)}" for k, val in mask_env(dict(s.env)).items())
        cmd = shlex.join(mask_argv(list(s.argv)))
        lines.append(f"    {i}. {s.description}")
        lines.append(f"       {env + ' ' if env else ''}{cmd}")
    if p.constraints:
        lines.append("  constraints (nlpsetup-constraints.txt)")
        for pin in v.pins:
            lines.append(f"    {pin.req}" + (f"  # {pin.why}" if pin.why else ""))
        for c in p.constraints[len(v.pins):]:
            lines.append(f"    {c}  # keep the framework build installed above")
    lines.append("  smoke")
    lines.extend(f"    {line}" for line in _smoke_lines(v))
    for w in p.warnings:
        lines.append(f"  warning: {w}")
    if v.notes:
        lines.append(f"  note: {v.notes.strip()}")
    return "\n".join(lines)


def _smoke_lines(v: Variant) -> list[str]:
    s = v.smoke
    out = []
    if s.imports:
        out.append("import " + ", ".join(s.imports))
    if s.code:
        first = s.code.strip().splitlines()
        out.append(f"code: {len(first)} line(s), e.g. {first[0][:80]}" if first else "code")
    out.extend("run: " + shlex.join(c) for c in s.commands)
    out.append(f"timeout {s.timeout} s")
    return out


@_terminal
def show_text(r: Recipe) -> str:
    lines = [f"{r.name}: {r.summary}", f"  homepage {r.homepage}", f"  status   {r.status}"]
    if r.aliases:
        lines.append(f"  aliases  {', '.join(r.aliases)}")
    if r.history:
        lines.append(f"  history  {r.history.strip()}")
    if r.notes:
        lines.append(f"  notes    {r.notes.strip()}")
    lines.append(f"  recipe   {r.path}")
    for i, v in enumerate(r.variants):
        default = " (default)" if i == 0 else ""
        lines.append("")
        lines.append(f"  variant {v.id}{default}")
        lines.append(f"    python     {fmt_spec(v.python)}" + (f"  ({v.python_reason})" if v.python_reason else ""))
        lines.append(f"    platforms  {', '.join(v.platforms)}; arch {', '.join(v.arch)}"
                     + (f"; glibc >= {v.glibc}" if v.glibc else ""))
        lines.append(f"    packages   {' '.join(v.packages)}")
        lines.append(f"    as of      {v.as_of or 'latest (no date)'}"
                     + (f"; exempt: {', '.join(v.as_of_exempt)}" if v.as_of_exempt else ""))
        if v.framework:
            lines.append(f"    framework  {' '.join(n + s for n, s in v.framework)}")
            if any(n == "torch" for n, _ in v.framework):
                from nlpsetup.resolve.compute import torch_size_mb

                lines.append(f"               torch comes from PyTorch's CPU or CUDA index, chosen per host: the CPU "
                             f"build is about {torch_size_mb('cpu')} MB installed, a CUDA one about "
                             f"{torch_size_mb('cuda')} MB")
        for pkg, follows in v.companions:
            lines.append(f"    companion  {pkg} follows {follows}'s major.minor")
        for pkg, swaps in v.cuda_packages:
            lines.append(f"    cuda swap  {pkg} -> " + ", ".join(f"{tag}: {req}" for tag, req in swaps))
        for pin in v.pins:
            lines.append(f"    pin        {pin.req}" + (f"  # {pin.why}" if pin.why else "")
                         + (f" ({pin.url})" if pin.url else ""))
        if v.pre:
            lines.append(f"    pre        {' '.join(v.pre)}")
        if v.only_binary:
            lines.append(f"    binary     only wheels for {', '.join(v.only_binary)}")
        for k, val in v.env:
            lines.append(f"    env        {k}={val} (while installing)")
        for tool, why in v.tools:
            lines.append(f"    needs      {tool}: {why}")
        if v.conda:
            lines.append(f"    conda      {' '.join(v.conda['packages'])}")
        if v.size_mb:
            lines.append(f"    size       about {v.size_mb} MB")
        lines.append("    smoke      " + "; ".join(_smoke_lines(v)))
        if v.notes:
            lines.append(f"    notes      {v.notes.strip()}")
    return "\n".join(lines)


def variant_dict(v: Variant) -> dict:
    return {
        "id": v.id,
        "python": fmt_spec(v.python),
        "python_specifier": str(v.python),
        "python_reason": v.python_reason,
        "platforms": list(v.platforms),
        "arch": list(v.arch),
        "packages": list(v.packages),
        "pins": [{"req": p.req, "why": p.why, "url": p.url} for p in v.pins],
        "pre": list(v.pre),
        "framework": dict(v.framework),
        "companions": dict(v.companions),
        "cuda_packages": {k: dict(s) for k, s in v.cuda_packages},
        "only_binary": list(v.only_binary),
        "prefer_binary": v.prefer_binary,
        "glibc": v.glibc,
        "env": dict(v.env),
        "tools": dict(v.tools),
        "conda": v.conda,
        "extras": list(v.extras),
        "main": v.main,
        "aliases": list(v.aliases),
        "step_timeout": v.step_timeout,
        "size_mb": v.size_mb,
        "notes": v.notes,
        "smoke": v.smoke.to_dict(),
        "as_of": v.as_of,
        "as_of_exempt": list(v.as_of_exempt),
    }


def recipe_dict(r: Recipe) -> dict:
    return {
        "schema_version": 1,
        "name": r.name,
        "summary": r.summary,
        "homepage": r.homepage,
        "status": r.status,
        "aliases": list(r.aliases),
        "notes": r.notes,
        "history": r.history,
        "path": r.path,
        "digest": r.digest,
        "variants": [variant_dict(v) for v in r.variants],
    }


@_terminal
def outcome_text(o) -> str:
    """The end of an install: how to use the env, or what failed, why, and where the log is."""
    if o.status == "present":
        return f"nlpsetup: {o.message}\n  use it: nlpsetup run {o.env} -- python"
    if o.ok:
        from nlpsetup.envs.env import Env

        activate = Env.at(o.path).activate_command()
        held = " + ".join(f"{t['tool']} {t['version'] or t['variant']}" for t in o.tools) or o.env
        named = "" if [o.env] == [t["tool"] for t in o.tools] else f" (env {o.env})"
        size = f", {mb(o.size_bytes)}" if o.size_bytes is not None else ""
        lines = [f"nlpsetup: {held}{named} is installed and verified ({o.backend}){size}."]
        lines += [f"  additions installed again: {', '.join(o.reapplied)}"] if o.reapplied else []
        lines += [f"  additions not carried over: {', '.join(o.dropped)}"] if o.dropped else []
        return "\n".join([*lines, f"  use it:   nlpsetup run {o.env} -- python", f"  or:       {activate}",
                          f"  check it: nlpsetup verify {o.env}"])
    from nlpsetup.execution.smoke import last_lines

    lines = [f"nlpsetup: install failed: {o.message}"]
    if o.diagnosis:
        lines.append(f"  likely cause: {o.diagnosis}")
    if shown := last_lines(list(o.tail), 10):  # capped: a package may print megabytes; the log has it all
        lines.append("  last lines:")
        lines.extend(f"    {line}" for line in shown)
    if o.log:
        lines.append(f"  full log: {o.log}")
    if o.failed_step == "smoke" and "kept at" not in o.message:
        lines.append("  to inspect the env, keep it: run the install again with --keep-failed")
    return "\n".join(lines)


_MARK = {"ok": "[ok]", "warning": "[!] ", "failure": "[x] "}


@_terminal
def doctor_text(groups: list[tuple[str, list]]) -> str:
    lines = []
    for title, findings in groups:
        if not findings:
            continue
        lines.append(title)
        for f in findings:
            lines.append(f"  {_MARK[f.status]} {f.message}")
            if f.fix and f.status != "ok":
                lines.append(f"        -> {f.fix}")
    return "\n".join(lines)


@_terminal
def doctor_markdown(host: dict, groups: list[tuple[str, list]], env: dict[str, str], last_failure: dict | None,
                    version: str) -> str:
    """A paste-ready report. Everything in it has been through the masking functions."""
    out = [f"## nlpsetup doctor report (nlpsetup {version})", "", "### Host", "", "```json",
           json.dumps(host, indent=2), "```", ""]
    for title, findings in groups:
        if not findings:
            out += [f"### {title}", "", "none", ""]
            continue
        out += [f"### {title}", "", "| status | check | message | what to do |", "|---|---|---|---|"]
        for f in findings:
            out.append(f"| {f.status} | {f.id} | {f.message.replace('|', '/')} | {f.fix.replace('|', '/')} |")
        out.append("")
    out += ["### Environment variables", "", "```"]
    out += [f"{k}={v}" for k, v in sorted(env.items())] or ["(none relevant)"]
    out += ["```", ""]
    if last_failure:
        out += [f"### Last failed install ({last_failure['log']})", "", "```", last_failure["plan"], "```", "",
                "Tail of its log:", "", "```", *last_failure["tail"], "```", ""]
    return mask_text("\n".join(out))


@_terminal
def list_text(rows: list[dict]) -> str:
    width = max((len(r["name"]) for r in rows), default=10)
    return "\n".join(f"{r['name']:<{width}}  " + (f"ok  {r['variant']} on Python {r['python']}" if r["available"]
                                                   else f"no  {r['reason']}")
                     + ("  (discovered)" if r.get("discovered") else "") for r in rows)


def mb(size_bytes: int | None) -> str:
    return f"{size_bytes / 1e6:,.0f} MB" if size_bytes is not None else "?"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Columns as wide as their widest cell, header included; the last one is not padded."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in (header, *rows)]


def _verified(r: dict) -> str:
    v = r.get("last_verify")
    return f"{'ok' if v['ok'] else 'FAILED'} {v['at'][:10]}" if v else "-"


@_terminal
def envs_text(rows: list[dict]) -> str:
    """One line per env: its tools with their installed versions, Python, additions, kernel, the
    last verify, status and size; problems and the repair command under it."""
    if not rows:
        return "no envs yet: nlpsetup install TOOL"
    header = ("ENV", "TOOL", "VERSION", "PYTHON", "ADDITIONS", "KERNEL", "VERIFIED", "STATUS", "SIZE")
    cells = []
    for r in rows:
        installed = r.get("installed") or []
        cells.append((r["name"], " + ".join(t["tool"] for t in installed) or "-",
                      " + ".join(t["version"] or "?" for t in installed) or "-", r["python"] or "?",
                      str(len(r.get("additions") or [])), "yes" if r.get("kernel") else "-", _verified(r),
                      r["status"], mb(r["size_bytes"])))
    lines = _table(header, cells)
    out = lines[:1]
    for r, line in zip(rows, lines[1:], strict=True):
        out.append(line)
        out += [f"    {p}" for p in r["problems"]]
        out += [f"    repair: {r['repair']}"] if r.get("repair") else []
    return "\n".join(out)


@_terminal
def env_text(r: dict) -> str:
    """One env in full (`envs ENV`)."""
    lines = [f"{r['name']}: {r['status']}", f"  path        {r['path']}"]
    for t in r.get("installed") or []:
        lines.append(f"  tool        {t['tool']} {t['version'] or '?'}"
                     + (f" ({t['package']})" if t["package"] != t["tool"] else "") + f", variant {t['variant']}")
    lines.append(f"  python      {r['python'] or '?'}")
    lines.append(f"  deps as of  {r.get('as_of') or 'the day it was built (no cutoff)'}")
    if r.get("created"):
        lines.append(f"  built       {r['created']}" + (f", changed {r['updated']}" if r.get("updated") else ""))
    lines.append(f"  additions   {', '.join(r.get('additions') or []) or 'none'}")
    lines.append(f"  kernel      {'nlpsetup-' + r['name'] if r.get('kernel') else 'none'}")
    lines.append(f"  size        {mb(r['size_bytes'])}")
    lines.append(f"  verified    {_verified(r)}")
    lines += [f"  problem     {p}" for p in r["problems"]]
    lines += [f"  repair      {r['repair']}"] if r.get("repair") else []
    return "\n".join(lines)


@_terminal
def verify_lines(results: list[dict]) -> list[tuple[str, bool]]:
    """(line, is_diagnostic) pairs: problems and drift are diagnostics (stderr), verdicts are not."""
    out = []
    for r in results:
        out += [(f"{r['env']}: {r.get('status', 'broken')}: {problem}", True) for problem in r["problems"]]
        d = r["drift"] or {}
        if any(d.values()):
            out.append((f"{r['env']}: drift since install: " + "; ".join(
                f"{k} {', '.join(v)}" for k, v in d.items() if v), True))
        if r.get("status") != "skipped":  # its note above is all there is to say
            out.append((f"{r['env']}: {'ok' if r['ok'] else 'FAILED'}", False))
        if r.get("repair"):
            out.append((f"  repair it: {r['repair']}", True))
    if len(results) > 1:
        skipped = sum(r.get("status") == "skipped" for r in results)
        failed = sum(not r["ok"] for r in results)
        out.append((f"verify: {len(results) - skipped - failed} ok, {failed} failed, {skipped} skipped", False))
    return out


@_terminal
def doctor_summary(report) -> str:
    from nlpsetup.doctor.report import summary

    s = summary(report.findings)
    return f"{doctor_text(report.groups)}\n{s['ok']} ok, {s['warning']} warning(s), {s['failure']} failure(s)"


@_terminal
def host_text(h) -> str:
    data = h.to_dict()
    lines = [f"host     {h.describe()}", *(f"python   {p.describe()}" for p in h.pythons)]
    g = h.gpu
    lines.append(f"gpu      driver {g.driver}, " + ", ".join(f"{x.name} (sm {x.compute_capability})" for x in g.gpus)
                 if g.driver else f"gpu      none ({g.error or 'no NVIDIA driver'})")
    lines += [f"tool     {name}: {path}" for name, path in h.tools]
    idx = data["index"]
    lines.append(f"index    {idx['index_url'] or 'PyPI (default)'}"
                 + (f" + {' '.join(idx['extra_index_urls'])}" if idx["extra_index_urls"] else ""))
    return "\n".join(lines)


@_terminal
def recipe_test_text(rows: list[dict]) -> str:
    return "\n".join(f"{row['tool']:<26} {row.get('variant') or '-':<14} {row.get('python') or '-':<8} "
                     f"{row['result']:<8} {row.get('detail') or ''}"[:200] for row in rows)


@_terminal
def outdated_text(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        head = f"{row['tool']:<26} {row['package']:<24}"
        if "error" in row:
            lines.append(f"{head} cannot check: {row['error']}")
        elif row["covered"]:
            lines.append(f"{head} up to date ({row['newest']})")
        else:
            lines.append(f"{head} {row['newest']} is newer than the recipe knows ({row['newest_known']}); "
                         f"Requires-Python {row['requires_python'] or '?'}, {len(row['requires_dist'])} "
                         f"requirements (from {row['metadata_from']})")
    return "\n".join(lines)


@_terminal
def recipe_check_lines(results: list[tuple[str, object]]) -> list[tuple[str, bool]]:
    """(line, is_error) for each checked file: `ok` with its name and variants, or every problem."""
    out = []
    for f, r in results:
        if isinstance(r, Exception):
            out += [(f"{r.path}: {problem}", True) for problem in r.problems]
        else:
            from nlpsetup.resolve.cutoff import recipe_warnings

            out.append((f"{f}: ok ({r.name}, {len(r.variants)} variant(s))", False))
            out += [(f"{f}: warning: {w}", True) for w in recipe_warnings(r)]
    return out


def plan_warnings(plans) -> list[str]:
    """The plans' warnings, each once; named by tool where an env holds several."""
    tagged = [f"{p.tool}: {w}" if len(plans) > 1 else w for p in plans for w in p.warnings]
    return list(dict.fromkeys(tagged))


@_terminal
def install_start(plans) -> str:
    p = plans[0]
    return (f"nlpsetup: installing {' + '.join(f'{x.tool} {x.variant.id}' for x in plans)} on Python "
            f"{p.python.version} -> {p.env_path}")


def recipe_check_dict(results: list[tuple[str, object]]) -> list[dict]:
    return [{"file": f, "ok": not isinstance(r, Exception), "problems": list(getattr(r, "problems", []))}
            for f, r in results]


def bundle_text(b) -> str:
    """The end of `bundle`: what was written, its size against the env's, and how to use it."""
    mb = b.size_bytes / 2**20
    about = "about " if b.env_size_estimated else ""
    env = f"; the env it builds: {about}{b.env_size_bytes / 2**20:.0f} MB" if b.env_size_bytes else ""
    return (f"nlpsetup: wrote {b.path}: {b.files} wheels, {mb:.1f} MB{env}\n"
            f"  install it offline: nlpsetup install --from-bundle {b.path}")
