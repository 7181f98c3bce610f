"""Credentials in index URLs never reach the terminal, logs, manifests, locks or JSON."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import figures
import installkit

SECRETS = ["s3cretPASS", "t0kenSECRET", "SIGabc123"]


@pytest.fixture(scope="module")
def server(kit):
    root = Path(kit["recipes"]).parent / "index"
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_credentialed_index_urls_are_masked_in_every_output(kit, server, tmp_path, backend):
    from nlpsetup.resolve.backends import find_uv

    if backend == "uv" and not find_uv():
        pytest.skip("uv is not installed")
    home = tmp_path / "home"
    env = installkit.environ(kit, home,
                             PIP_INDEX_URL=f"http://alice:{SECRETS[0]}@{server}/main/simple",
                             PIP_EXTRA_INDEX_URL=f"http://{server}/empty/?X-Amz-Signature={SECRETS[2]}",
                             NLPSETUP_TORCH_INDEX_URL=f"http://{SECRETS[1]}@{server}/mirror")
    outputs = []

    def run(*args):
        p = subprocess.run([sys.executable, "-m", "nlpsetup", *args], capture_output=True, text=True, env=env,
                           timeout=300)
        outputs.extend([p.stdout, p.stderr])
        return p

    assert run("install", "nlpdemo", "--backend", backend, "-v").returncode == 0, outputs
    assert run("install", "nlpdemo", "--backend", backend, "--force", "--json").returncode == 0
    run("plan", "nlpdemo", "--json")
    run("host", "--json")
    run("envs", "--json")
    run("verify", "--json")
    lock = tmp_path / "lock.json"
    run("lock", "nlpdemo", "-o", str(lock))
    assert run("install", "nlpdemo", "--name", "fails", "--step-timeout", "1", "--backend", backend,
               "--force").returncode in (0, 1)
    files = [*home.rglob("*.json"), *home.rglob("*.log"), lock]
    texts = outputs + [f.read_text(errors="replace") for f in files if f.is_file()]
    planted = len(SECRETS)
    found = [(s, i) for s in SECRETS for i, t in enumerate(texts) if s in t]
    figures.add("secrets planted", planted)
    figures.add("secrets found in output", len(found))
    assert found == [], f"secrets leaked: {found}"
    manifest = json.loads((home / "envs" / "nlpdemo" / "nlpsetup.json").read_text())
    assert "****" in json.dumps(manifest["host"]["index"]) and manifest["distributions"]["torch"] == "2.13.0+cpu"
    print(f"secrets planted: {planted}, outputs checked: {len(texts)}, secrets found: 0")


class _SlowHandler(_QuietHandler):
    """Serves the local index, each wheel a second late: long enough to read the children's argv."""

    def do_GET(self):
        if self.path.endswith(".whl"):
            import time

            time.sleep(1.0)
        super().do_GET()


def _cmdlines(own: int) -> list[str]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != own:
            try:
                out.append((d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass  # gone already
    return out


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_credentials_never_reach_a_process_listing(kit, tmp_path, backend):
    """`ps` shows every user's argv: a token in an index URL must travel in the environment."""
    from nlpsetup.resolve.backends import find_uv

    if backend == "uv" and not find_uv():
        pytest.skip("uv is not installed")
    root = Path(kit["recipes"]).parent / "index"
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_SlowHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = f"127.0.0.1:{httpd.server_address[1]}"
    home = tmp_path / "home"
    env = installkit.environ(kit, home, PIP_INDEX_URL=f"http://alice:{SECRETS[0]}@{server}/main/simple",
                             NLPSETUP_TORCH_INDEX_URL=f"http://bob:{SECRETS[1]}@{server}/mirror",
                             UV_CACHE_DIR=str(tmp_path / "uv"), PIP_NO_CACHE_DIR="1")
    p = subprocess.Popen([sys.executable, "-m", "nlpsetup", "install", "nlpdemo", "--backend", backend],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: set[str] = set()
    while p.poll() is None:
        seen.update(c for c in _cmdlines(p.pid) if "install" in c)
    out, err = p.communicate()
    httpd.shutdown()
    assert p.returncode == 0, err
    installs = [c for c in seen if " pip install " in c]
    assert any("torch" in c for c in installs), seen  # the framework step was running while we looked
    figures.add("secrets planted", 2)
    leaked = [c for c in seen if SECRETS[0] in c or SECRETS[1] in c]
    figures.add("secrets found in output", len(leaked))
    assert leaked == [], leaked
    manifest = json.loads((home / "envs" / "nlpdemo" / "nlpsetup.json").read_text())
    assert manifest["distributions"]["torch"] == "2.13.0+cpu"  # and the mirror was still used
    assert SECRETS[1] not in out + err + json.dumps(manifest)


PROXY_SECRETS = {  # each written as users really write them
    "HTTPS_PROXY": "eve:PRXsecret1@proxy.invalid:3128",  # no scheme: pip and curl accept it
    "http_proxy": "http://al:xx@PRXsecret2@proxy.invalid:3128",  # a raw '@' in the password
    "ALL_PROXY": "socks5://PRXsecret3@proxy.invalid:1080",  # a lone token
}


def test_proxies_and_raw_at_passwords_are_masked_in_host_doctor_reports_and_manifests(kit, tmp_path):
    home = tmp_path / "home"
    report = tmp_path / "report.md"
    extra = {**PROXY_SECRETS, "NO_PROXY": "127.0.0.1,localhost",
             "PIP_EXTRA_INDEX_URL": "https://al:pp@PRXsecret4@127.0.0.1:9/simple"}
    outputs = []
    for args in (["install", "tinytool", "--backend", "pip"], ["host"], ["host", "--json"], ["doctor", "--quick"],
                 ["doctor", "--quick", "--json"], ["doctor", "--quick", "--report", str(report)], ["envs", "--json"]):
        code, out, err = installkit.nlpsetup(kit, home, *args, **extra)
        assert code in (0, 1), (args, err)
        outputs += [out, err]
    files = [report, *home.rglob("*.json"), *home.rglob("*.log")]
    texts = outputs + [f.read_text(errors="replace") for f in files]
    figures.add("secrets planted", 4)
    found = [(s, i) for s in ("PRXsecret1", "PRXsecret2", "PRXsecret3", "PRXsecret4") for i, t in enumerate(texts)
             if s in t]
    figures.add("secrets found in output", len(found))
    assert found == []
    host = json.loads(outputs[4])  # `host --json`
    assert host["proxies"]["HTTPS_PROXY"] == "eve:****@proxy.invalid:3128"
    manifest = json.loads((home / "envs" / "tinytool" / "nlpsetup.json").read_text())
    assert manifest["host"]["proxies"]["HTTP_PROXY"] == "http://al:****@proxy.invalid:3128"


@pytest.mark.parametrize(("text", "masked"), [
    ("https://al:p@ss@host/simple", "https://al:****@host/simple"),
    ("HTTPS_PROXY=eve:pw@proxy:3128", "HTTPS_PROXY=eve:****@proxy:3128"),
    ("'eve:p@w@proxy:3128'", "'eve:****@proxy:3128'"),
    ("https://tok@host/x?token=abc", "https://****@host/x?token=****"),
    # not credentials: an '@' in a path, a git remote, an email, a requirement
    ("git+https://github.com/org/repo@v1.0", "git+https://github.com/org/repo@v1.0"),
    ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
    ("write to a@b.org", "write to a@b.org"),
    ("demo @ https://example.org/demo.whl", "demo @ https://example.org/demo.whl"),
    # an image reference pinned by digest: name:tag is not user:password
    (f"docker://python:3.12-slim-bookworm@sha256:{'ab' * 32}", f"docker://python:3.12-slim-bookworm@sha256:{'ab' * 32}"),
    (f"docker://u:pw@reg.example/img@sha256:{'cd' * 32}", f"docker://u:****@reg.example/img@sha256:{'cd' * 32}"),
])
def test_masking_finds_the_whole_secret_and_only_secrets(text, masked):
    from nlpsetup.base.redact import mask_text

    assert mask_text(text) == masked
    assert mask_text(masked) == masked  # masking twice changes nothing


def test_credentialed_index_options_move_from_argv_to_the_environment():
    from nlpsetup.resolve.backends import credentials_to_env

    argv, env = credentials_to_env(["py", "-m", "pip", "install", "torch", "--index-url", "https://u:pw@m/simple",
                                    "--extra-index-url=https://plain/simple"], "pip")
    assert argv == ["py", "-m", "pip", "install", "torch", "--extra-index-url=https://plain/simple"]
    assert env == {"PIP_INDEX_URL": "https://u:pw@m/simple"}
    argv, env = credentials_to_env(["uv", "pip", "install", "torch", "--default-index", "https://tok@m/simple",
                                    "--index", "https://a/", "--index", "https://b/?sig=x"], "uv")
    assert argv == ["uv", "pip", "install", "torch"]  # an option moves whole: the argv would win over the variable
    assert env == {"UV_DEFAULT_INDEX": "https://tok@m/simple", "UV_INDEX": "https://a/ https://b/?sig=x"}
    plain = ["uv", "pip", "install", "torch", "--default-index", "https://m/simple"]
    assert credentials_to_env(plain, "uv") == (plain, {})


# --- secret values printed by a package or a check -------------------------------------------------------

_VALUES = {"HF_TOKEN": "hf_pLaNtEdT0kenValue", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTED",
           "MY_SERVICE_PASSWORD": "Corr3ct-H0rse-Battery"}


def test_secret_values_printed_by_a_check_are_masked_in_terminal_logs_and_report(kit, tmp_path):
    """A smoke check that prints the user's tokens (as a debug line of a package would): the values of
    secret-named variables never reach the terminal, the logs or doctor --report; short everyday values
    of such variables (TOKENIZERS_PARALLELISM=false) are left alone."""
    folder = tmp_path / "r"
    folder.mkdir()
    leak = "import os; print(*[os.environ[k] for k in ('HF_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'MY_SERVICE_PASSWORD')])"
    (folder / "leaky.toml").write_text(installkit.RECIPE.format(
        name="leaky", id="1", packages='"tinytool"', extra="", timeout=60,
        smoke=f'code = "{leak}; raise RuntimeError(os.environ[\'HF_TOKEN\'] + \' parallel \' + os.environ[\'TOKENIZERS_PARALLELISM\'])"'))
    home = tmp_path / "home"
    env = installkit.environ(kit, home, NLPSETUP_RECIPES_PATH=str(folder), TOKENIZERS_PARALLELISM="false",
                             **_VALUES)
    outputs = []
    for args in (["install", "leaky", "--backend", "pip", "-v"], ["doctor", "--report", str(tmp_path / "r.md")]):
        p = subprocess.run([sys.executable, "-m", "nlpsetup", *args], capture_output=True, text=True, env=env,
                           timeout=300)
        outputs += [p.stdout, p.stderr]
    texts = outputs + [f.read_text(errors="replace") for f in [*home.rglob("*"), tmp_path / "r.md"] if f.is_file()]
    assert "**** parallel false" in "".join(outputs)  # the check ran and failed, and its error was shown
    leaked = [(k, i) for k, v in _VALUES.items() for i, t in enumerate(texts) if v in t]
    assert leaked == [], leaked
    assert "****" in (tmp_path / "r.md").read_text()


def test_known_credentials_are_masked_standing_alone_and_everyday_values_are_not(tmp_path, monkeypatch):
    from nlpsetup.base.redact import mask_text

    netrc = tmp_path / ".netrc"
    netrc.write_text("machine idx.example login bob password n3trcPassw0rd\n")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("PIP_INDEX_URL", "https://alice:url-Passw0rd@idx.example/simple")
    monkeypatch.setenv("HF_TOKEN", "hf_abcdef123456")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # a secret-looking name, an everyday value
    monkeypatch.setenv("API_KEY", "abc")  # too short to mask on its own without garbling output
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(netrc))  # where a key is, not the key
    text = f"n3trcPassw0rd url-Passw0rd hf_abcdef123456 false abc {netrc}"
    assert mask_text(text) == f"**** **** **** false abc {netrc}"
