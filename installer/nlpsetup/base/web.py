"""The one HTTP client for what nlpsetup fetches itself: the index reachability probe and the
index pages and metadata that `recipe outdated`, `envs --outdated`, `lock` and `export` read.

Credentials come from the URL's userinfo or, as pip does, from ~/.netrc, or from the `keyring`
command when uv or pip is told to ask it (UV_KEYRING_PROVIDER=subprocess); they are sent as a
basic-auth header (urllib cannot take userinfo in a URL: it reads `user:pw@host` as a host with a
port), only to the host they were given for (redirects are followed here, not by urllib, which
copies every header to wherever a redirect points), and never appear in an error, which is one
masked line. Each request has a total deadline besides the per-read timeout.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse, urlsplit, urlunsplit

from nlpsetup.base.files import read_regular
from nlpsetup.base.redact import mask_text, remember

MAX_BODY = 64 * 2**20  # an index page or a METADATA file; a larger answer is not one
MAX_REDIRECTS = 10  # requests' default is 30; an index redirects once or twice (to its CDN)
# Seconds for one whole request, redirects included: the per-read timeout alone never trips on an
# index (or proxy) that sends a byte every few seconds. NLPSETUP_HTTP_DEADLINE changes it.
DEADLINE = 60.0
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchError(Exception):
    """A fetch failed; the message is safe to print (credentials masked)."""


def _auth(url: str) -> tuple[str, dict[str, str], str | None, str | None]:
    """(url without userinfo, headers, user, password) for a URL: its own userinfo, else ~/.netrc."""
    parts = urlsplit(url)
    user = password = None
    if "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")  # a raw '@' may sit in the password
        user, _, password = userinfo.partition(":")
        user, password = unquote(user), unquote(password)
        parts = parts._replace(netloc=hostport)
    elif parts.hostname:
        user, password = _netrc(parts.hostname)
    headers = _basic(user, password) if user is not None else {}
    return urlunsplit(parts), headers, user, password or None


def _basic(user: str, password: str | None) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _netrc(host: str) -> tuple[str | None, str | None]:
    import netrc

    try:
        found = netrc.netrc().authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None, None
    return (found[0], found[2]) if found else (None, None)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def keeps_credentials(old: str, new: str) -> bool:
    """Whether a redirect from `old` to `new` may carry old's credentials: only to the same scheme,
    host and port, or from http to https on the same host with the default ports (pip's and
    requests' rule). Anything else (another host, another port, https -> http) drops them."""
    a, b = _origin(old), _origin(new)
    return a == b or (a == ("http", b[1], 80) and b == ("https", a[1], 443))


class _Deadline:
    """Shuts the request's sockets when its time is up, so that a blocked read returns at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            late = self.expired
        if late:
            self._expire()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _deadline_seconds() -> float:
    try:
        value = float(os.environ.get("NLPSETUP_HTTP_DEADLINE", DEADLINE))
    except ValueError:
        return DEADLINE
    return value if value > 0 else DEADLINE


def _opener(deadline: _Deadline):
    """An opener that follows no redirect itself and hands every socket it opens to `deadline`."""
    import http.client
    import urllib.request

    def tracked(base):
        class Connection(base):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                create = self._create_connection  # the raw socket, before TLS wraps it

                def create_tracked(*a, **kw):
                    sock = create(*a, **kw)
                    deadline.track(sock)
                    return sock

                self._create_connection = create_tracked
        return Connection

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(tracked(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(tracked(http.client.HTTPSConnection), req, context=self._context)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # the redirect comes back as an HTTPError: get() decides what follows it

    return urllib.request.build_opener(HTTP, HTTPS, NoRedirect)


def get(url: str, *, accept: str | None = None, timeout: float = 30, method: str = "GET",
        follow_redirects: bool = True, deadline: float | None = None) -> tuple[bytes, str]:
    """(body, content type) of a URL; a file:// folder reads its index.html. Raises FetchError;
    without `follow_redirects` a redirect is reported as its HTTP status. `timeout` bounds each
    read, `deadline` (default NLPSETUP_HTTP_DEADLINE, else 60 s) the whole request."""
    if url.startswith("file://"):
        path = Path(unquote(urlparse(url).path))
        try:  # a FIFO or /dev/zero in a local index is refused, not read forever
            return read_regular(path / "index.html" if path.is_dir() else path, MAX_BODY), "text/html"
        except OSError as exc:
            raise FetchError(f"{path}: {exc.strerror or exc}") from None
    watch = _Deadline(deadline or _deadline_seconds())
    try:
        return _fetch(url, accept, timeout, method, follow_redirects, watch)
    finally:
        watch.cancel()


def _fetch(url: str, accept: str | None, timeout: float, method: str, follow_redirects: bool,
           watch: _Deadline) -> tuple[bytes, str]:
    import http.client
    import urllib.error
    import urllib.request

    clean, headers, user, password = _auth(url)
    remember(password)
    opener = _opener(watch)
    tried_keyring = False
    for _ in range(MAX_REDIRECTS + 1):
        request = urllib.request.Request(clean, headers={**headers, **({"Accept": accept} if accept else {})},
                                         method=method)
        try:
            with opener.open(request, timeout=timeout) as r:
                body = r.read(MAX_BODY + 1)
                if watch.expired:  # an answer without a length ends early, silently, when its socket is shut
                    raise _late(clean, watch)
                if len(body) > MAX_BODY:
                    raise FetchError(mask_text(f"{clean}: the answer is over {MAX_BODY} bytes"))
                return body, r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.code in (301, 302, 303, 307, 308) else None
            exc.close()
            if location and follow_redirects:
                target = urljoin(clean, location)
                if urlsplit(target).scheme.lower() not in _DEFAULT_PORTS:
                    raise FetchError(mask_text(f"{clean}: redirected to {target}, which is not http(s)")) from None
                if keeps_credentials(clean, target) and "@" not in urlsplit(target).netloc:
                    clean = target
                else:  # another origin: only the credentials the user gave for that one (its .netrc entry)
                    clean, headers, user, password = _auth(target)
                    remember(password)
                method = "GET" if exc.code == 303 and method != "HEAD" else method
                continue
            if exc.code == 401 and password is None and not tried_keyring:
                tried_keyring = True
                password, missing = _keyring_password(clean, user)
                if password is not None:
                    remember(password)
                    headers = {**headers, **_basic(user or "", password)}
                    continue
                raise FetchError(mask_text(f"{clean}: HTTP 401 {exc.reason}: the index wants credentials: {missing}")) from None
            if watch.expired:
                raise _late(clean, watch) from None
            raise FetchError(mask_text(f"{clean}: HTTP {exc.code} {exc.reason}")) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            if watch.expired:
                raise _late(clean, watch) from None
            reason = getattr(exc, "reason", exc)
            raise FetchError(mask_text(f"{clean}: {reason}")) from None
    raise FetchError(mask_text(f"{clean}: more than {MAX_REDIRECTS} redirects"))


def _late(url: str, watch: _Deadline) -> FetchError:
    host = urlsplit(url).hostname or url
    return FetchError(f"{host}: no whole answer within {watch.seconds:g} s (the index or proxy stalls, or sends "
                      "too slowly): check the index URL and the proxy, or allow longer with NLPSETUP_HTTP_DEADLINE=SECONDS")


# --- keyring ---------------------------------------------------------------------------------------


def keyring_provider(environ=os.environ) -> str | None:
    """The setting that tells the backend to ask the `keyring` command, as `VAR=value`, or None."""
    for var, asks in (("UV_KEYRING_PROVIDER", ("subprocess",)),
                      ("PIP_KEYRING_PROVIDER", ("subprocess", "import", "auto"))):
        value = environ.get(var, "").strip().lower()
        if value in asks:
            return f"{var}={value}"
    return None


def _keyring_password(url: str, user: str | None) -> tuple[str | None, str]:
    """(password, "") from the keyring, asked as uv's and pip's subprocess provider ask it (`keyring
    get URL USER`, then `keyring get HOST USER`); else (None, what is missing and the fix)."""
    import shutil

    from nlpsetup.base import proc

    provider = keyring_provider()
    if provider is None:
        return None, ("none were given: put them in the index URL or ~/.netrc, or have uv and nlpsetup ask the "
                      "keyring (UV_KEYRING_PROVIDER=subprocess with the `keyring` command on PATH)")
    exe = shutil.which("keyring")
    if exe is None:
        return None, (f"{provider} is set but no `keyring` command is on PATH: install it "
                      "(uv tool install keyring) or put the credentials in ~/.netrc")
    if not user:
        return None, (f"{provider} asks the keyring for a user, and the index URL names none: write it as "
                      "https://USER@HOST/... (uv needs the user too)")
    host = urlsplit(url).hostname or ""
    for service in dict.fromkeys((url, url.rstrip("/"), host)):
        code, out = proc.capture([exe, "get", service, user], env=proc.child_env(), timeout=30)
        password = out.rstrip("\r\n")
        if code == 0 and password:
            return password, ""
    return None, f"the keyring ({provider}) has no password for {user} at {host}: keyring set {host} {user}"


def reachable(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether an index answers at all (any HTTP status counts: the server is there)."""
    if url.startswith("file://"):
        path = Path(unquote(urlparse(url).path))
        return path.is_dir(), "" if path.is_dir() else "no such folder"
    try:  # a redirect is an answer; a probe waits no longer in all than one read may
        get(url, timeout=timeout, method="HEAD", follow_redirects=False, deadline=timeout)
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
