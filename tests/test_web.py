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
            if self.path.startswith("/moved/"):  # a move within the same host keeps the credentials
                self.send_response(301)
                self.send_header("Location", self.path[len("/moved"):])
                self.end_headers()
                return
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


# --- redirects: credentials stay with the host they were given for ------------------------------------


@pytest.fixture
def redirector():
    """A server on another port of 127.0.0.1 that redirects every request to `target[0]`, and records
    the Authorization headers it saw."""
    target: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", target[0] + self.path)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", target
    server.shutdown()


def test_a_redirect_to_another_port_does_not_carry_the_credentials(kit, tmp_path, private_index, redirector):
    host, path, seen = private_index
    front, target = redirector
    target.append(f"http://{host}")
    code, out = _outdated(kit, tmp_path / "h", f"http://alice:p%40ss%3Aw0rd@{front}{path}")
    assert seen and not any(seen), seen  # the second server never saw alice's credentials
    assert code == 1 and "HTTP 401" in out and "w0rd" not in out
    code, out = _outdated(kit, tmp_path / "h", f"http://alice:p%40ss%3Aw0rd@{host}/moved{path}")
    assert code == 0 and json.loads(out)[0]["newest"] == "2.0.0", out  # the same host and port keep them


def test_credentials_follow_only_a_same_origin_or_upgrading_redirect():
    from nlpsetup.base.web import keeps_credentials

    assert keeps_credentials("https://idx.example/simple/", "https://idx.example/files/x.whl")
    assert keeps_credentials("http://idx.example/simple/", "https://idx.example/simple/")  # pip's upgrade rule
    assert not keeps_credentials("https://idx.example/simple/", "http://idx.example/simple/")  # a downgrade
    assert not keeps_credentials("https://idx.example/simple/", "https://cdn.example/x.whl")
    assert not keeps_credentials("https://idx.example/simple/", "https://idx.example:8443/simple/")


# --- an index that drips -------------------------------------------------------------------------------


@pytest.fixture
def dripping():
    """A server that answers one byte of headers at a time, forever, until the client hangs up."""
    import socket
    import time

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn):
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.is_set():
                    conn.sendall(b"a")
                    time.sleep(0.2)  # far under the 30 s per-read timeout: only a total deadline ends it
            except OSError:
                pass  # the client hung up

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def test_an_index_that_sends_a_byte_at_a_time_meets_the_total_deadline(kit, tmp_path, dripping):
    code, out = _outdated(kit, tmp_path / "h", f"http://{dripping}/simple", NLPSETUP_HTTP_DEADLINE="2")
    assert code == 1 and "127.0.0.1: no whole answer within 2 s" in out and "NLPSETUP_HTTP_DEADLINE" in out, out


# --- keyring ----------------------------------------------------------------------------------------------


def _fake_keyring(folder: Path, password: str) -> Path:
    """A `keyring` command that knows alice's password for 127.0.0.1 only (uv's subprocess provider
    runs `keyring get SERVICE USER`)."""
    folder.mkdir()
    script = folder / "keyring"
    script.write_text(f"""#!/bin/sh
[ "$1" = get ] && [ "$3" = alice ] || exit 1
case "$2" in *127.0.0.1*) echo '{password}'; exit 0;; esac
exit 1
""")
    script.chmod(0o755)
    return folder


def test_a_keyring_authenticated_index_is_asked_like_uv_asks_it(kit, tmp_path, private_index):
    import os

    host, path, _ = private_index
    bin_dir = _fake_keyring(tmp_path / "bin", "p@ss:w0rd")
    url = f"http://alice@{host}{path}"
    with_keyring = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "UV_KEYRING_PROVIDER": "subprocess"}
    code, out = _outdated(kit, tmp_path / "h", url, **with_keyring)
    assert code == 0 and json.loads(out)[0]["newest"] == "2.0.0", out
    assert "w0rd" not in out
    code, out = _outdated(kit, tmp_path / "h", url)  # no provider: say what is missing, not just 401
    assert code == 1 and "the index wants credentials" in out and "UV_KEYRING_PROVIDER=subprocess" in out
    code, out = _outdated(kit, tmp_path / "h", url, UV_KEYRING_PROVIDER="subprocess")
    assert code == 1 and "no `keyring` command is on PATH" in out, out
    code, out = _outdated(kit, tmp_path / "h", f"http://{host}{path}", **with_keyring)
    assert code == 1 and "the index URL names none" in out, out


def test_lock_reads_a_keyring_authenticated_index_and_names_what_is_missing(kit, tmp_path, private_index):
    """The env was built by uv through the keyring; `lock` must read the hashes the same way, and
    without the keyring it says that credentials are missing, not that the index is the wrong one."""
    import os

    host, path, _ = private_index
    home = tmp_path / "h"
    assert installkit.nlpsetup(kit, home, "install", "tinytool", "--backend", "pip")[0] == 0
    index = {"PIP_INDEX_URL": f"http://alice@{host}{path}"}
    bin_dir = _fake_keyring(tmp_path / "bin", "p@ss:w0rd")
    keyring = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "UV_KEYRING_PROVIDER": "subprocess"}
    code, out, err = installkit.nlpsetup(kit, home, "lock", "tinytool", "-o", str(tmp_path / "l.json"), **index, **keyring)
    assert code == 0, err
    assert "w0rd" not in out + err + (tmp_path / "l.json").read_text()
    code, out, err = installkit.nlpsetup(kit, home, "lock", "tinytool", **index)
    assert code == 1 and "the index wants credentials" in err and "keyring" in err, err
    assert "as when it was built" not in err  # the old hint sent users to PIP_INDEX_URL, which was right
