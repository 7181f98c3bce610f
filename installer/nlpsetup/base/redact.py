"""Masking of credentials in anything nlpsetup prints or writes, and escaping of the control
characters that text from outside (recipes, package output) could use to drive the terminal.

Index URLs carry tokens in their userinfo (https://user:token@host/simple) and presigned
URLs carry them in the query (X-Amz-Signature=...). A secret can also appear on its own: a
package or a smoke check that prints HF_TOKEN, or a password from an index URL or ~/.netrc, so
mask_text also masks every value it knows to be a credential (see known_secrets). Everything
that leaves the process (terminal, logs, captured output, manifests, locks, reports, JSON) goes
through these functions.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from urllib.parse import unquote

MASK = "****"

# Query parameters whose values are credentials (S3 presigned URLs, Azure SAS, generic tokens).
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|token|access_token|sig|signature"
    r"|password|secret|api_key|apikey|key)=)([^&#\s'\"]+)"
)
# scheme://user:password@host or scheme://token@host. The userinfo runs to the LAST '@' before
# the path (RFC 3986: a password may hold a raw '@' that the user did not percent-encode); an '@'
# after the first '/' is part of the path (git+https://host/repo@v1.0), not credentials.
# An image reference's digest (docker://python:3.12-slim@sha256:...) is not a host: name:tag is no user:password.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s'\"<>]*)@(?!sha(?:256|384|512):[0-9a-f]{32})")
# A proxy written without a scheme (HTTPS_PROXY=eve:pw@proxy:3128, which curl and pip accept):
# user:password@host[:port] standing alone as a word, password up to the last '@' before the host.
_BARE_USERINFO = re.compile(
    r"(?<![^\s'\"=(,\[{<])([A-Za-z0-9._~%!$&*+;-]+):([^\s'\"/]*)@([A-Za-z0-9.-]+(?::\d+)?)(?=[/\s'\"),\]}>]|$)")
# Variable names whose values are secrets.
_SECRET_NAME = re.compile(r"(?i)(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)")


def mask_text(text: str) -> str:
    """Mask URL credentials anywhere in free text (a URL, a log line, pip's config echo), and every
    known secret value wherever it stands."""
    if not text:
        return text
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(_mask_userinfo, text)
    text = _BARE_USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@{m.group(3)}", text)
    return _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, text)


# --- secret values, wherever they appear ------------------------------------------------------------

# A value shorter than this, or an everyday word, is not masked on its own: replacing every "1",
# "true" or "cpu" in pip's output would garble it (TOKENIZERS_PARALLELISM=false, KEY_COUNT=3) and
# protect nothing that masking could. Such values are still masked inside URLs and in env listings.
MIN_SECRET = 6
_EVERYDAY = frozenset({"true", "false", "enabled", "disabled", "default", "always", "never", "none", "null",
                       "subprocess", "import", "auto", "localhost"})
# Secret-looking names whose values are not secrets: a person's name, a socket, a file or folder.
_NOT_SECRET_NAME = re.compile(r"(?i)AUTHOR|KEYBOARD|KEYMAP|_SOCK$|_FILE$|_PATH$|_DIR$")
_remembered: set[str] = set()
_cache: dict[str, object] = {}
_lock = threading.Lock()


def worth_masking(value: str | None) -> bool:
    if not value or len(value.strip()) < MIN_SECRET or value.strip().lower() in _EVERYDAY:
        return False
    return not (os.path.isabs(value) and os.path.exists(value))  # a key file's location is not the key


def remember(*secrets: str | None) -> None:
    """Mask these values from now on too (a password read from the keyring, say)."""
    with _lock:
        _remembered.update(s for s in secrets if worth_masking(s))
        _cache.clear()


def url_passwords(text: str) -> list[str]:
    """The passwords (or lone tokens) in the userinfo of every URL in a text, as written and decoded."""
    out = []
    for m in _USERINFO.finditer(text):
        user, colon, password = m.group(2).partition(":")
        secret = password if colon else user
        out += [secret, unquote(secret)]
    return out


def known_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every value this process knows to be a credential, longest first: the values of secret-named
    variables (HF_TOKEN, AWS_SECRET_ACCESS_KEY...), the passwords in any variable's URLs (PIP_INDEX_URL),
    the passwords of ~/.netrc, and what `remember` was given. Recomputed when the environment changes."""
    environ = os.environ if environ is None else environ
    key = (tuple(environ.items()), _netrc_stamp(environ))
    with _lock:
        if _cache.get("key") == key:
            return _cache["secrets"]  # type: ignore[return-value]
        found = set(_remembered)
    for name, value in environ.items():
        if is_secret_name(name) and not _NOT_SECRET_NAME.search(name):
            found.add(value)
        if "@" in value:
            found.update(url_passwords(value))
    found.update(_netrc_passwords(key[1]))
    secrets = tuple(sorted((s for s in found if worth_masking(s)), key=len, reverse=True))
    with _lock:
        _cache.update(key=key, secrets=secrets)
    return secrets


def _netrc_stamp(environ: Mapping[str, str]) -> tuple[str, float] | None:
    path = environ.get("NETRC") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".netrc")
    try:
        return path, os.stat(path).st_mtime
    except OSError:
        return None


def _netrc_passwords(stamp: tuple[str, float] | None) -> list[str]:
    import netrc

    if stamp is None:
        return []
    try:
        hosts = netrc.netrc(stamp[0]).hosts
    except (OSError, netrc.NetrcParseError, UnicodeDecodeError):
        return []
    return [x for (_login, account, password) in hosts.values() for x in (password, account) if x]


def _mask_userinfo(m: re.Match[str]) -> str:
    scheme, (user, colon, password) = m.group(1), m.group(2).partition(":")
    if user == MASK or (password == MASK and colon):
        return m.group(0)  # already masked
    # Keep a user name next to a password (it helps debugging); a lone token is the secret itself.
    return f"{scheme}{user}:{MASK}@" if password else f"{scheme}{MASK}@"


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """Mask the values of secret-named variables, and URL credentials in all the others."""
    return {k: (MASK if is_secret_name(k) and v else mask_text(v)) for k, v in env.items()}


def mask_argv(argv: list[str]) -> list[str]:
    return [mask_text(a) for a in argv]


# C0 controls but TAB and LF, DEL, C1 controls (ESC [ ... sequences, CR overwrites, BEL, and
# 0x9b, a one-byte CSI), and the bidirectional overrides that reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """Text from outside as the terminal must show it: each control character spelt out
    (ESC as \\x1b, CR as \\r), so that it is seen rather than obeyed."""
    if not text:
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
