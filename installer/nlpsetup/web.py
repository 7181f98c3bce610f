"""The one HTTP client for what nlpsetup fetches itself: the index reachability probe and the
index pages and metadata `recipe outdated` reads.

Credentials come from the URL's userinfo or, as pip does, from ~/.netrc; they are sent as a
basic-auth header (urllib cannot take userinfo in a URL: it reads `user:pw@host` as a host
with a port) and never appear in an error, which is one masked line.
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from nlpsetup.files import read_regular
from nlpsetup.redact import mask_text

MAX_BODY = 64 * 2**20  # an index page or a METADATA file; a larger answer is not one


class FetchError(Exception):
    """A fetch failed; the message is safe to print (credentials masked)."""


def _auth(url: str) -> tuple[str, dict[str, str], str | None]:
    """(url without userinfo, headers, the password to keep out of messages)."""
    parts = urlsplit(url)
    user = password = None
    if "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")  # a raw '@' may sit in the password
        user, _, password = userinfo.partition(":")
        user, password = unquote(user), unquote(password)
        parts = parts._replace(netloc=hostport)
    elif parts.hostname:
        user, password = _netrc(parts.hostname)
    headers = {}
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return urlunsplit(parts), headers, password or None


def _netrc(host: str) -> tuple[str | None, str | None]:
    import netrc

    try:
        found = netrc.netrc().authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None, None
    return (found[0], found[2]) if found else (None, None)


def _safe(text: str, secret: str | None) -> str:
    text = mask_text(text)
    return text.replace(secret, "****") if secret else text


def get(url: str, *, accept: str | None = None, timeout: float = 30, method: str = "GET",
        follow_redirects: bool = True) -> tuple[bytes, str]:
    """(body, content type) of a URL; a file:// folder reads its index.html. Raises FetchError;
    without `follow_redirects` a redirect is reported as its HTTP status."""
    import urllib.error
    import urllib.request

    if url.startswith("file://"):
        path = Path(unquote(urlparse(url).path))
        try:  # a FIFO or /dev/zero in a local index is refused, not read forever
            return read_regular(path / "index.html" if path.is_dir() else path, MAX_BODY), "text/html"
        except OSError as exc:
            raise FetchError(f"{path}: {exc.strerror or exc}") from None
    clean, headers, secret = _auth(url)
    if accept:
        headers["Accept"] = accept
    try:
        request = urllib.request.Request(clean, headers=headers, method=method)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(*([] if follow_redirects else [NoRedirect]))
        with opener.open(request, timeout=timeout) as r:
            body = r.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                raise FetchError(_safe(f"{mask_text(clean)}: the answer is over {MAX_BODY} bytes", secret))
            return body, r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise FetchError(_safe(f"{mask_text(clean)}: HTTP {exc.code} {exc.reason}", secret)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(_safe(f"{mask_text(clean)}: {reason}", secret)) from None


def reachable(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether an index answers at all (any HTTP status counts: the server is there)."""
    if url.startswith("file://"):
        path = Path(unquote(urlparse(url).path))
        return path.is_dir(), "" if path.is_dir() else "no such folder"
    try:
        get(url, timeout=timeout, method="HEAD", follow_redirects=False)  # a redirect is an answer
    except FetchError as exc:
        if ": HTTP " in str(exc):
            return True, ""
        return False, str(exc).split(": ", 1)[-1]
    return True, ""


def json_of(body: bytes, url: str):
    """The JSON an index answered; ValueError (one masked line) for anything else, including a
    document nested too deeply to parse (RecursionError, which is no ValueError)."""
    import json

    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError(f"{mask_text(url)}: the answer is JSON nested too deeply to read") from None
