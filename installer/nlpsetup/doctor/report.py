"""What `nlpsetup doctor` reports: `run` composes the host, env and recipe checks (and `--fix`)
into a Report of grouped findings, with its summary and JSON document; `report_env` picks the
variables a paste-ready report shows. This module never prints."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from nlpsetup.doctor.envs import env_checks, fix
from nlpsetup.doctor.finding import FAILURE, OK, WARNING, Finding
from nlpsetup.doctor.host import host_checks, probe_early
from nlpsetup.doctor.recipe import tool_checks
from nlpsetup.envs.store import EnvStore
from nlpsetup.facts.host import Host

SCHEMA_VERSION = 1


def summary(findings: list[Finding]) -> dict[str, int]:
    return {s: sum(f.status == s for f in findings) for s in (OK, WARNING, FAILURE)}


@dataclass
class Report:
    """What `nlpsetup doctor` found: groups of findings, and what --fix did."""

    groups: list[tuple[str, list[Finding]]]
    fixed: list[str]

    @property
    def findings(self) -> list[Finding]:
        return [f for _, fs in self.groups for f in fs]

    @property
    def failed(self) -> bool:
        return any(f.status == FAILURE for f in self.findings)

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "summary": summary(self.findings),
                "checks": [f.to_dict() for f in self.findings], "fixed": self.fixed}


def run(book, host: Host, home: Path | None, *, tool: str | None = None, quick: bool = False,
        deep: bool = False, do_fix: bool = False) -> Report:
    """The host and every env, or with `tool`, each constraint of its recipe."""
    from nlpsetup.execution.execute import reachable
    from nlpsetup.resolve import backends

    if tool:
        return Report([(f"Recipe {tool}", tool_checks(book.get(tool), host))], [])
    store = EnvStore(home)
    biggest = max((v.size_mb or 0 for r in book.recipes.values() for v in r.variants), default=0)
    probe = None if quick else probe_early(host, lambda u: reachable(u, timeout=3))  # runs beside the env checks
    env_findings = env_checks(store, quick=quick, deep=deep)
    host_findings = host_checks(host, biggest_mb=biggest, today=dt.date.today(), versions=backends.tool_versions(),
                                probe_index=probe)
    fixed = []
    if do_fix:
        fixed = fix(store, env_findings)
        env_findings = env_checks(store, quick=quick, deep=deep)
    return Report([("Host", host_findings), ("Envs", env_findings)], fixed)


def report_env(environ) -> dict[str, str]:
    """The variables a paste-ready report shows (masked by the caller's renderer)."""
    from nlpsetup.base.redact import is_secret_name

    return {k: v for k, v in environ.items()
            if k.startswith(("PIP_", "UV_", "NLPSETUP_", "CUDA", "HF_", "CONDA", "VIRTUAL_ENV", "PYTHON"))
            or k.upper().endswith("_PROXY") or is_secret_name(k)}
