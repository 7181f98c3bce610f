"""The checks' runner, shipped into an image as nlpsetup-checks/run.py (`spec.check_files`) and run
there by the engine's verification and by the Kubernetes Job: smoke's own harness in the env's
interpreter, its marker lines turned into one line per check, then one `nlpsetup-result` line and
an exit status (the harness itself always exits 0).

A program, not a module: nlpsetup never imports it, only reads its text. It runs in the image's
Python, so: stdlib only, Python 3.6 syntax (no f-strings), and it starts its child itself.
"""
# ruff: noqa: UP031

import json
import os
import subprocess
import sys
import tempfile
import threading
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    with open(os.path.join(HERE, "checks.json"), encoding="utf-8") as f:
        spec = json.load(f)
    names, nonce = spec["names"], uuid.uuid4().hex
    cwd = tempfile.mkdtemp(prefix="nlpsetup-smoke-")
    with open(os.path.join(cwd, "checks.json"), "w", encoding="utf-8") as f:
        json.dump(spec["checks"], f)
    env = dict(os.environ, PYTHONNOUSERSITE="1", **spec["env"])
    p = subprocess.Popen([sys.executable, "-I", os.path.join(HERE, "harness.py"), nonce, "checks.json"],
                         cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    timer = threading.Timer(spec["limit"], p.kill)  # the harness limits commands; this, the rest
    timer.start()
    marker, done, lines = "NLPSETUP-" + nonce + " ", {}, []
    for raw in p.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if not line.startswith(marker):
            lines.append(line)
            continue
        what, data = line[len(marker):].split(" ", 1)
        data = json.loads(data)
        if what in ("start", "show"):
            lines = []
        if what == "end":
            ok = data["passed"]
            done[data["i"]] = ok
            why = data.get("why") or ("timed out" if data.get("timed_out") else "")
            print("nlpsetup-check: %s %s (%.1fs)%s" % ("PASS" if ok else "FAIL", names[data["i"]], data["seconds"],
                                                      ": " + why if why else ""))
            if not ok:
                for tail in lines[-8:]:
                    print("  | " + tail)
            sys.stdout.flush()
    p.wait()
    timer.cancel()
    failed = [n for i, n in enumerate(names) if not done.get(i)]
    for n in failed:
        if names.index(n) not in done:
            print("nlpsetup-check: FAIL %s: did not finish (the interpreter exited %s)" % (n, p.returncode))
    size = sum(os.path.getsize(os.path.join(d, x)) for d, _, fs in os.walk(sys.prefix) for x in fs
               if not os.path.islink(os.path.join(d, x)))
    print("nlpsetup-result " + json.dumps({"failed": failed, "passed": len(names) - len(failed),
                                            "env_size_bytes": size}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
