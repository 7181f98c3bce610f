"""A project's page on a simple index, the one place nlpsetup reads one: asked for PEP 691 JSON
first, PEP 503 HTML otherwise, and read into File values (file name, URL, the published sha256,
the PEP 700 upload time, the PEP 592 yank, whether PEP 658 metadata is served).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from nlpsetup.base import web

PYPI = "https://pypi.org/simple"
ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"


@dataclass(frozen=True)
class File:
    """One file of a release, as an index (or a find-links location) lists it."""

    filename: str
    url: str  # as fetched: may carry credentials, so mask it before writing it anywhere
    sha256: str | None = None  # the digest the index publishes, where it publishes one
    index: str = ""  # the index (or find-links location) it was found on, raw
    upload_time: str | None = None  # PEP 700, where the index publishes it (PEP 691 JSON only)
    yanked: bool = False  # PEP 592
    metadata: bool = False  # the index serves FILE.metadata (PEP 658/714)

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @cached_property
    def version(self) -> Version | None:
        """The release the file belongs to, None where its name is no wheel's or sdist's."""
        found = release_of(self.filename)
        return found[1] if found else None


def release_of(filename: str) -> tuple[str, Version] | None:
    """(canonical name, version) of a wheel or sdist file name, or None for anything else."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return name, version
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def project_url(index: str, name: str) -> str:
    return f"{index.rstrip('/')}/{canonicalize_name(name)}/"


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str, dict]] = []  # (href, text, attributes)
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            a = dict(attrs)
            self._href = a.get("href")
            self.links.append((self._href or "", "", a))

    def handle_data(self, data):
        if self._href is not None and self.links:
            href, text, a = self.links[-1]
            self.links[-1] = (href, text + data, a)

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None


def parse_page(body: bytes, content_type: str, page_url: str) -> list[File]:
    """Every file a project page links, with absolute URLs; ValueError for JSON that cannot be read."""
    if "json" in content_type:
        doc = web.json_of(body, page_url)
        return [_json_file(f, page_url) for f in (doc.get("files") if isinstance(doc, dict) else None) or []
                if isinstance(f, dict) and isinstance(f.get("filename"), str) and isinstance(f.get("url"), str)]
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    files = []
    for href, text, attrs in parser.links:
        url, _, fragment = urljoin(page_url, href).partition("#")
        files.append(File(unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or text.strip(), url,
                          fragment[len("sha256="):] if fragment.startswith("sha256=") else None,
                          yanked="data-yanked" in attrs,  # PEP 503 HTML has no upload times
                          metadata="data-core-metadata" in attrs or "data-dist-info-metadata" in attrs))
    return files


def _json_file(f: dict, page_url: str) -> File:
    hashes = f.get("hashes")
    return File(f["filename"], urljoin(page_url, f["url"]),
                (hashes or {}).get("sha256") if isinstance(hashes, dict) else None,
                upload_time=f.get("upload-time") if isinstance(f.get("upload-time"), str) else None,
                yanked=bool(f.get("yanked")), metadata=bool(f.get("core-metadata") or f.get("dist-info-metadata")))


@dataclass(frozen=True)
class Page:
    """A page as the index answered it."""

    url: str
    body: bytes
    content_type: str

    @property
    def is_json(self) -> bool:
        return "json" in self.content_type

    def document(self):
        """The PEP 691 JSON as read; ValueError for a body that is not JSON."""
        return web.json_of(self.body, self.url)

    def files(self) -> list[File]:
        return parse_page(self.body, self.content_type, self.url)


def fetch(url: str, *, timeout: float = 30) -> Page:
    """A project (or find-links) page; raises web.FetchError, an HTTP 404 where there is no such project."""
    body, content_type = web.get(url, accept=ACCEPT, timeout=timeout)
    return Page(url, body, content_type)


def published(index: str, project: str) -> list[File]:
    """The files of the project's releases on the index: not yanked, named as a wheel or sdist of a
    release. Raises web.FetchError or ValueError."""
    return [f for f in fetch(project_url(index, project)).files() if not f.yanked and f.version is not None]
