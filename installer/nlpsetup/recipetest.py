"""`nlpsetup recipe test`: build each variant's env in a temporary home, run its smoke checks,
record the result and remove the env. What a team runs before it shares a recipe, and what
produces the verification table (docs/recipes.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from nlpsetup import __version__, execute, paths, resolve
from nlpsetup.env import Env
from nlpsetup.errors import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, NlpsetupError
from nlpsetup.files import MAX_JSON_BYTES, read_regular, shape_problem, write_json_atomic
from nlpsetup.host import Host
from nlpsetup.pythons import PythonRequest
from nlpsetup.recipes import Recipe


def cells(recipe: Recipe, host: Host, *, all_variants: bool, pythons: list[str] | None, only: str | None = None):
    """(variant id or None, python version or None) pairs to try, in order."""
    variants = [only] if only else [v.id for v in recipe.variants] if all_variants else [None]
    return [(v, p) for v in variants for p in (pythons or [None])]


_PREFIX = "nlpsetup-recipe-test-"


def _sweep_stale_homes() -> None:
    """Remove the temporary homes of earlier runs that were killed (SIGKILL skips every cleanup):
    each is named after its process, and removed only once that process is gone."""
    from nlpsetup.proc import start_time

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
        reporter, keep_logs: Path, build: bool = True, only: str | None = None) -> list[dict]:
    _sweep_stale_homes()
    rows = []
    for variant_id, py in cells(recipe, host, all_variants=all_variants, pythons=pythons, only=only):
        request = resolve.Request(tool=resolve.ToolRequest(recipe.name), variant=variant_id,
                                  python=PythonRequest(raw=py, version=py) if py else None)
        # Ctrl-C, SIGTERM and SIGHUP remove it on the way out; after a SIGKILL, the next run does.
        with tempfile.TemporaryDirectory(prefix=f"{_PREFIX}{os.getpid()}-") as tmp:
            home = Path(tmp)
            result = resolve.resolve(recipe, host, request, envs_root=paths.envs_dir(home))
            row = {"tool": recipe.name, "variant": variant_id, "python": py, "date": dt.date.today().isoformat(),
                   "nlpsetup": __version__, "recipe_digest": recipe.digest[:12], "host": host.describe()}
            if isinstance(result, resolve.Refusal):
                reasons = [f"{rej.variant}: {'; '.join(r.message for r in rej.reasons)}" for rej in result.rejected]
                rows.append({**row, "result": "refused", "detail": " | ".join(reasons) or result.headline})
                continue
            row.update(variant=result.variant.id, python=result.python.version)
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
        Path(markdown_path).write_text(markdown(table))
