"""A wheel's own core metadata (Requires-Python, Requires-Dist): the index's PEP 658 `.metadata`
file, or the wheel itself on a local index; never the JSON API's summary, which has named
dependency versions that do not exist.
"""

from __future__ import annotations

import email.parser
import zipfile
from urllib.parse import unquote, urlparse

from nlpsetup.base import web
from nlpsetup.index.pages import File


def wheel_metadata(f: File) -> dict:
    """Requires-Python and Requires-Dist from the wheel's METADATA; {} where neither the index nor a
    local file can give it. Raises web.FetchError, OSError, zipfile.BadZipFile or StopIteration."""
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
