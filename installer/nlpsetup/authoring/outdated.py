"""`nlpsetup recipe outdated`: releases on the index newer than a recipe knows.

Versions come from the index's project page (PEP 691 JSON or PEP 503 HTML); dependencies come
from the wheel's own METADATA (PEP 658 `.metadata` files, or the wheel itself for local
indexes), never from the JSON API's summary, which has named dependency versions that do not
exist."""

from __future__ import annotations

import email.parser
import html.parser
import re
import zipfile
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlparse

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from nlpsetup.base import web
from nlpsetup.base.redact import mask_text
from nlpsetup.recipes.model import Recipe

PYPI = "https://pypi.org/simple"
_SDIST = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*?)\.(tar\.gz|zip)$")


@dataclass(frozen=True)
class File:
    filename: str
    url: str
    version: Version
    metadata: bool  # the index serves FILE.metadata (PEP 658/714)


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            a = dict(attrs)
            if a.get("href"):
                self.links.append((a["href"], a))


def files(index_url: str, project: str) -> list[File]:
    page = f"{index_url.rstrip('/')}/{canonicalize_name(project)}/"
    body, ctype = web.get(page, accept="application/vnd.pypi.simple.v1+json, text/html;q=0.1")
    out = []
    if "json" in ctype:
        doc = web.json_of(body, page)
        for f in (doc.get("files") if isinstance(doc, dict) else None) or []:
            if isinstance(f, dict) and isinstance(f.get("filename"), str) and isinstance(f.get("url"), str):
                out.append((f["filename"], urljoin(page, f["url"]),
                            bool(f.get("core-metadata") or f.get("dist-info-metadata")), f.get("yanked")))
    else:
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        for href, attrs in parser.links:
            name = unquote(href.split("#")[0].rsplit("/", 1)[-1])
            meta = "data-core-metadata" in attrs or "data-dist-info-metadata" in attrs
            out.append((name, urljoin(page, href.split("#")[0]), meta, "data-yanked" in attrs))
    result = []
    for filename, url, meta, yanked in out:
        if yanked:
            continue
        try:
            if filename.endswith(".whl"):
                version = parse_wheel_filename(filename)[1]
            elif m := _SDIST.match(filename):
                version = Version(m.group("version"))
            else:
                continue
        except (InvalidVersion, ValueError):
            continue
        result.append(File(filename, url, version, meta))
    return result


def wheel_metadata(f: File) -> dict:
    """Requires-Python and Requires-Dist from the wheel's METADATA."""
    if f.metadata:
        raw, _ = web.get(f.url + ".metadata")
    elif f.url.startswith("file://") and f.filename.endswith(".whl"):
        with zipfile.ZipFile(unquote(urlparse(f.url).path)) as z:
            name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            raw = z.read(name)
    else:
        return {}
    msg = email.parser.BytesParser().parsebytes(raw, headersonly=True)
    return {"requires_python": msg.get("Requires-Python"), "requires_dist": msg.get_all("Requires-Dist") or []}


def check(recipe: Recipe, index_url: str) -> list[dict]:
    """For each distinct main package: the newest release and whether a variant covers it; a
    package that cannot be checked gets a row with its `error` (and `recipe outdated` exits 1)."""
    rows = []
    seen = set()
    for v in recipe.variants:
        pkg = canonicalize_name(v.main)
        if pkg in seen:
            continue
        seen.add(pkg)
        specs = [x.main_requirement.specifier for x in recipe.variants if canonicalize_name(x.main) == pkg]
        try:
            rows.append({"tool": recipe.name, "package": pkg, **_newest(index_url, pkg, specs)})
        except (web.FetchError, OSError, ValueError, LookupError, TypeError, AttributeError, StopIteration,
                zipfile.BadZipFile) as exc:  # unreachable, no such project, a bad page, a broken wheel
            rows.append({"tool": recipe.name, "package": pkg, "error": mask_text(str(exc)) or type(exc).__name__})
    return rows


def _newest(index_url: str, pkg: str, specs) -> dict:
    found = [f for f in files(index_url, pkg) if not f.version.is_prerelease]
    if not found:
        raise LookupError("no releases on the index")
    newest = max(f.version for f in found)
    covered = any(s.contains(newest, prereleases=True) for s in specs)
    known = sorted({f.version for f in found if any(s.contains(f.version, prereleases=True) for s in specs)})
    wheel = next((f for f in found if f.version == newest and f.filename.endswith(".whl")), None)
    meta = wheel_metadata(wheel) if wheel else {}
    return {
        "newest": str(newest), "newest_known": str(known[-1]) if known else None, "covered": covered,
        "requires_python": meta.get("requires_python"), "requires_dist": meta.get("requires_dist", []),
        "metadata_from": "wheel METADATA" if meta else "none (sdist only)",
    }


def check_all(recipes: list[Recipe], index_url: str | None = None) -> list[dict]:
    """check() for each recipe, against --index-url, else pip's configured index, else PyPI."""
    import os

    from nlpsetup.facts.host import pip_index_settings

    index = index_url or pip_index_settings(dict(os.environ)).index_url or PYPI
    return [row for r in recipes for row in check(r, index)]
