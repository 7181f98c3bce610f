"""Masking of credentials in anything nlpsetup prints or writes, and escaping of the control
characters that text from outside (recipes, package output) could use to drive the terminal.

Index URLs carry tokens in their userinfo (https://user:token@host/simple) and presigned
URLs carry them in the query (X-Amz-Signature=...). Everything that leaves the process
(terminal, logs, manifests, locks, reports, JSON) goes through these functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MASK = "****"

# Query parameters whose values are credentials (S3 presigned URLs, Azure SAS, generic tokens).
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|token|access_token|sig|signature"
    r"|password|secret|api_key|apikey|key)=)([^&#\s'\"]+)"
)
# scheme://user:password@host or scheme://token@host. The userinfo runs to the LAST '@' before
# the path (RFC 3986: a password may hold a raw '@' that the user did not percent-encode); an '@'
# after the first '/' is part of the path (git+https://host/repo@v1.0), not credentials.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s'\"<>]*)@")
# A proxy written without a scheme (HTTPS_PROXY=eve:pw@proxy:3128, which curl and pip accept):
# user:password@host[:port] standing alone as a word, password up to the last '@' before the host.
_BARE_USERINFO = re.compile(
    r"(?<![^\s'\"=(,\[{<])([A-Za-z0-9._~%!$&*+;-]+):([^\s'\"/]*)@([A-Za-z0-9.-]+(?::\d+)?)(?=[/\s'\"),\]}>]|$)")
# Variable names whose values are secrets.
_SECRET_NAME = re.compile(r"(?i)(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)")


def mask_text(text: str) -> str:
    """Mask URL credentials anywhere in free text (a URL, a log line, pip's config echo)."""
    if not text:
        return text
    text = _USERINFO.sub(_mask_userinfo, text)
    text = _BARE_USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@{m.group(3)}", text)
    return _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, text)


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
