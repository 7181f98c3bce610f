"""The one HTTP client (index probe, `recipe outdated`): credentials from the URL or ~/.netrc
reach a private index as basic auth, and never reach the user's screen."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import installkit


@pytest.fixture
def private_index(kit):
    """The suite's local index served on loopback, answering only alice with the password p@ss:w0rd."""
    root = Path(unquote(urlparse(kit["index"]).path)).parent
    seen: list[str] = []
    want = "Basic " + base64.b64encode(b"alice:p@ss:w0rd").decode()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization") or "")
            if self.headers.get("Authorization") != want:
                self.send_response(401)
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", f"/{Path(unquote(urlparse(kit['index']).path)).name}", seen
    server.shutdown()


def _outdated(kit, home, url, **env):
    p = subprocess.run([sys.executable, "-m", "nlpsetup", "recipe", "outdated", "tinytool", "--json", "--index-url", url],
                       capture_output=True, text=True, env=installkit.environ(kit, home, **env), timeout=60)
    return p.returncode, p.stdout + p.stderr


def test_credentials_in_the_url_reach_the_index_and_stay_hidden(kit, tmp_path, private_index):
    host, path, seen = private_index
    code, out = _outdated(kit, tmp_path / "h", f"http://alice:p%40ss%3Aw0rd@{host}{path}")
    assert code == 0, out
    assert json.loads(out)[0]["newest"] == "2.0.0" and seen
    assert "w0rd" not in out


def test_a_raw_at_sign_in_the_password_works_and_a_wrong_one_is_masked(kit, tmp_path, private_index):
    host, path, _ = private_index
    code, out = _outdated(kit, tmp_path / "h", f"http://alice:p@ss:w0rd@{host}{path}")
    assert code == 0, out
    code, out = _outdated(kit, tmp_path / "h", f"http://alice:wrongsecret@{host}{path}")
    assert code == 1 and "HTTP 401" in out and "wrongsecret" not in out


def test_netrc_credentials_are_used_like_pip_does(kit, tmp_path, private_index):
    host, path, _ = private_index
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login alice password p@ss:w0rd\n")
    (tmp_path / ".netrc").chmod(0o600)
    code, out = _outdated(kit, tmp_path / "h", f"http://{host}{path}", HOME=str(tmp_path))
    assert code == 0 and json.loads(out)[0]["newest"] == "2.0.0", out
