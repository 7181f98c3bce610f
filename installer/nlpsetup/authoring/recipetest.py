"""`nlpsetup recipe test`: build each variant's env in a temporary home, run its smoke checks,
record the result and remove the env. What a team runs before it shares a recipe, and what
produces the verification table (docs/recipes.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nlpsetup import __version__
from nlpsetup.base import paths
from nlpsetup.base.errors import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, NlpsetupError
from nlpsetup.base.files import MAX_JSON_BYTES, read_regular, shape_problem, write_json_atomic
from nlpsetup.envs.env import Env
from nlpsetup.execution import execute
from nlpsetup.facts.host import Host
from nlpsetup.facts.pythons import PythonRequest
from nlpsetup.recipes.model import Recipe
from nlpsetup.resolve import model as resolve
from nlpsetup.resolve import resolve as resolver


def cells(recipe: Recipe, host: Host, *, all_variants: bool, pythons: list[str] | None, only: str | None = None):
    """(variant id or None, python version or None) pairs to try, in order."""
    variants = [only] if only else [v.id for v in recipe.variants] if all_variants else [None]
    return [(v, p) for v in variants for p in (pythons or [None])]


_PREFIX = "nlpsetup-recipe-test-"


def _sweep_stale_homes() -> None:
    """Remove the temporary homes of earlier runs that were killed (SIGKILL skips every cleanup):
    each is named after its process, and removed only once that process is gone."""
    from nlpsetup.base.proc import start_time

    try:
        entries = list(Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*"))
    except OSError:
        return
    for p in entries:
        pid = p.name[len(_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and start_time(int(pid)) is None and \
                os.path.isdir(f"/proc/{os.getpid()}") and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


def run(recipe: Recipe, host: Host, *, all_variants: bool, pythons: list[str] | None, backend: str,
        reporter, keep_logs: Path, build: bool = True, only: str | None = None, as_of: str | None = None) -> list[dict]:
    _sweep_stale_homes()
    rows = []
    for variant_id, py in cells(recipe, host, all_variants=all_variants, pythons=pythons, only=only):
        request = resolve.Request(tool=resolve.ToolRequest(recipe.name), variant=variant_id,
                                  python=PythonRequest(raw=py, version=py) if py else None, as_of=as_of)
        # Ctrl-C, SIGTERM and SIGHUP remove it on the way out; after a SIGKILL, the next run does.
        with tempfile.TemporaryDirectory(prefix=f"{_PREFIX}{os.getpid()}-") as tmp:
            home = Path(tmp)
            result = resolver.resolve(recipe, host, request, envs_root=paths.envs_dir(home))
            row = {"tool": recipe.name, "variant": variant_id, "python": py, "date": dt.date.today().isoformat(),
                   "nlpsetup": __version__, "recipe_digest": recipe.digest[:12], "host": host.describe()}
            if isinstance(result, resolve.Refusal):
                reasons = [f"{rej.variant}: {'; '.join(r.message for r in rej.reasons)}" for rej in result.rejected]
                rows.append({**row, "result": "refused", "detail": " | ".join(reasons) or result.headline})
                continue
            row.update(variant=result.variant.id, python=result.python.version,
                       as_of=str(result.as_of.date) if result.as_of else None)
            if not build:
                rows.append({**row, "result": "planned", "detail": "plan only (not built)"})
                continue
            start = time.monotonic()
            outcome = execute.install([result], host, home, execute.Options(backend=backend), reporter)
            seconds = round(time.monotonic() - start, 1)
            size = Env.at(outcome.path).size_bytes() if outcome.ok else None
            detail = "" if outcome.ok else f"{outcome.message}" + (f" ({outcome.diagnosis})" if outcome.diagnosis else "")
            if outcome.log and not outcome.ok:  # keep the failing log where the user can read it
                keep_logs.mkdir(parents=True, exist_ok=True)
                kept = keep_logs / Path(outcome.log).name
                shutil.copy(outcome.log, kept)
                detail += f"; log: {kept}"
            rows.append({**row, "result": "pass" if outcome.ok else "fail", "backend": outcome.backend,
                         "seconds": seconds, "size_mb": round(size / 1e6) if size else None,
                         "smoke_seconds": round(sum(r.seconds for r in outcome.smoke), 1), "detail": detail})
    return rows


def exit_code(rows: list[dict]) -> int:
    """1 when a build or smoke check failed; 3 when nothing could be built or planned here (every
    cell refused), so that a CI job that tested nothing does not pass; else 0."""
    if any(r["result"] == "fail" for r in rows):
        return EXIT_FAILED
    return EXIT_OK if any(r["result"] in ("pass", "planned") for r in rows) else EXIT_REFUSED


def read_record(record: str | Path | None) -> list[dict]:
    """The rows of a results file (none when it does not exist yet). A file that is not one is an
    error before any test runs: it is the user's, and is never overwritten with fewer rows."""
    if record is None:
        return []
    hint = "pass a file written by: nlpsetup recipe test --record FILE, or a new path"
    try:
        old = json.loads(read_regular(record, MAX_JSON_BYTES))
    except FileNotFoundError:
        return []
    except (OSError, ValueError, RecursionError) as exc:
        raise NlpsetupError(f"--record {record}: {str(exc)[:200]}", hint=hint) from None
    if problem := shape_problem(old, [{"tool": str, "result": str}]) or next(
            (f"[{i}]: has no tool" for i, r in enumerate(old) if "tool" not in r), None):
        raise NlpsetupError(f"--record {record} is not a results file: {problem}", hint=hint)
    return old


def merge(record: Path, rows: list[dict]) -> list[dict]:
    """Add rows to a results file, replacing older rows for the same (tool, variant, python)."""
    old = read_record(record)
    key = lambda r: (r["tool"], r.get("variant"), r.get("python"))  # noqa: E731
    fresh = {key(r) for r in rows}
    merged = [r for r in old if key(r) not in fresh] + rows
    merged.sort(key=lambda r: (r["tool"], str(r.get("variant")), _version_key(r.get("python"))))
    write_json_atomic(record, merged)
    return merged


def _version_key(version: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in (version or "0").split(".") if p.isdigit())


def markdown(rows: list[dict]) -> str:
    lines = [
        "# Recipe verification",
        "",
        "Produced by `nlpsetup recipe test` (regenerate: `nlpsetup recipe test --all --all-variants "
        "--record docs/recipes.json --markdown docs/recipes.md`). A `pass` row was built from the "
        "package index and passed its smoke checks; `refused` rows are what `nlpsetup plan` says "
        "this host cannot have, with the reason.",
        "",
        "| tool | variant | python | result | backend | install s | env MB | date | nlpsetup | detail |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        detail = (r.get("detail") or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r['tool']} | {r.get('variant') or '-'} | {r.get('python') or '-'} | {r['result']} | "
                     f"{r.get('backend') or '-'} | {r.get('seconds') or '-'} | {r.get('size_mb') or '-'} | "
                     f"{r['date']} | {r['nlpsetup']} | {detail[:400]} |")
    return "\n".join(lines) + "\n"


def python_list(value: str | None, host: Host) -> list[str] | None:
    """`--python 3.9,3.10`, or `all` for every Python 3 on this machine."""
    if value == "all":
        return sorted({p.minor for p in host.pythons if p.version >= "3"}, key=_version_key)
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


def record(rows: list[dict], record_path: str | None, markdown_path: str | None) -> None:
    """Merge this run into a results file, and write the whole record (or this run) as Markdown."""
    table = merge(Path(record_path), rows) if record_path else rows
    if markdown_path:
        Path(markdown_path).write_text(markdown(table), encoding="utf-8")


# --- moving a variant's date forward -----------------------------------------------------------

_AS_OF_LINE = re.compile(r'^(\s*as_of\s*=\s*)(["\'])(\d{4}-\d{2}-\d{2})\2')


@dataclass
class Bump:
    tool: str
    variant: str
    old: str | None
    new: str
    ok: bool
    path: str
    detail: str = ""  # the first failing check, when not ok
    changed: list[str] = field(default_factory=list)  # "name old -> new" between the two dates

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def bump_date(recipe: Recipe, host: Host, *, variant: str | None, to: str, backend: str, reporter,
              keep_logs: Path) -> Bump:
    """Build `variant` as of `to` in a temporary home and run its smoke checks; only when they pass,
    write the date into the recipe file (that one line: comments and layout kept). Otherwise say
    what broke: the first failing check and the releases that moved between the two dates."""
    from nlpsetup.resolve import cutoff

    v = recipe.variant(variant) if variant else recipe.variants[0]
    if v is None:
        raise NlpsetupError(f"{recipe.name} has no variant {variant!r}", hint=f"see them with: nlpsetup show {recipe.name}")
    new = str(dt.date.today() if to == "today" else cutoff.parse_date(to, "--to"))
    if v.as_of and new <= v.as_of:
        raise NlpsetupError(f"{recipe.name} {v.id} is already as of {v.as_of}", hint="pass a later --to date")
    rows = run(recipe, host, all_variants=False, pythons=None, backend=backend, reporter=reporter,
               keep_logs=keep_logs, only=v.id, as_of=new)
    row = rows[0]
    if row["result"] == "refused":
        raise NlpsetupError(f"{recipe.name} {v.id} cannot be built on this host: {row['detail']}", exit_code=EXIT_REFUSED)
    bump = Bump(recipe.name, v.id, v.as_of, new, row["result"] == "pass", recipe.path, row.get("detail", ""))
    if bump.ok:
        write_date(Path(recipe.path), recipe, v.id, new)
    else:
        bump.changed = releases_between(v, row["python"], v.as_of, new, host)
    return bump


def write_date(path: Path, recipe: Recipe, variant_id: str, new: str) -> None:
    """Rewrite the variant's `as_of = "..."` line (or add one after its `id` line): the file's text,
    not a re-serialised TOML, so that comments and layout stay as the maintainer wrote them."""
    from nlpsetup.base.files import write_text_atomic
    from nlpsetup.recipes.load import parse

    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    index = [v.id for v in recipe.variants].index(variant_id)
    headers = [i for i, ln in enumerate(lines) if re.match(r"\s*\[\[\s*variants\s*\]\]", ln)]
    start, end = headers[index], headers[index + 1] if index + 1 < len(headers) else len(lines)
    own = [i for i in range(start, end) if _AS_OF_LINE.match(lines[i])]
    if own:
        lines[own[0]] = _AS_OF_LINE.sub(lambda m: f"{m[1]}{m[2]}{new}{m[2]}", lines[own[0]], count=1)
    else:  # inherited from the recipe (or none): this variant gets its own, after its header or id
        after = next((i for i in range(start, end) if re.match(r"\s*id\s*=", lines[i])), start)
        lines.insert(after + 1, f'as_of = "{new}"  # moved by nlpsetup recipe bump-date: smoke checks passed\n')
    out = "".join(lines)
    parse(out, str(path), stem=path.stem)  # what is written must load, and say the new date
    write_text_atomic(path, out)


def releases_between(v, python: str | None, old: str | None, new: str, host: Host) -> list[str]:
    """'name old -> new' for each distribution that resolves differently at the two dates (uv pip
    compile, resolution only); one line saying why when it cannot be told."""
    from nlpsetup.base import proc
    from nlpsetup.resolve import backends, cutoff

    uv = backends.find_uv()
    if uv is None:
        return ["(install uv to list the releases that changed between the dates)"]
    pins = [p.req for p in v.pins]

    def resolved(date: str | None) -> dict[str, str] | str:
        with tempfile.TemporaryDirectory(prefix="nlpsetup-bump-") as tmp:
            req, con = Path(tmp) / "req.in", Path(tmp) / "constraints.txt"
            req.write_text("\n".join(v.packages) + "\n", encoding="utf-8")
            con.write_text("\n".join(pins) + "\n", encoding="utf-8")
            argv = [uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--python-version",
                    ".".join((python or "3").split(".")[:2]), "-c", str(con), str(req)]
            if date:
                argv += [cutoff.UV_FLAG, cutoff.Cutoff(dt.date.fromisoformat(date), "").instant]
            # resolving for a Python version needs no interpreter of it: never let uv download one
            env = proc.child_env({**backends.uv_index_env(host.index, os.environ), "UV_PYTHON_DOWNLOADS": "never"})
            code, out = proc.capture(argv, env=env, timeout=300, merge_stderr=True)
        if code != 0:
            return (out.strip().splitlines() or ["uv pip compile failed"])[-1]
        pairs = (ln.split("==", 1) for ln in out.splitlines() if "==" in ln and not ln.startswith("#"))
        return {a.strip().lower(): b.split(";")[0].strip() for a, b in pairs}

    before, after = resolved(old), resolved(new)
    for got in (before, after):
        if isinstance(got, str):
            return [f"(could not resolve to compare: {got})"]
    return [f"{n} {before.get(n, '-')} -> {after.get(n, '-')}" for n in sorted(set(before) | set(after))
            if before.get(n) != after.get(n)]
