"""The smoke harness: runs one recipe's checks inside the env's own interpreter.

Never imported by nlpsetup: smoke.py ships this file's text into a temporary folder (and image/spec.py
into an image) and runs it there as `python -I harness.py NONCE CHECKS.json`. The env's Python may be as
old as 3.6: stdlib only, no syntax newer than 3.6. It reads the checks from the JSON file and reports
with marker lines (carrying a nonce, so a check's own output cannot fake them) that the caller reads live:
  start {i}: check i (imports or code) begins     wait: the commands are awaited
  show {i}: command i's output follows             end {i, passed, seconds, why, timed_out}
A command forks from the harness when its program is this very interpreter (`python -m`, `python -c`,
or a console script whose #! line names it): the child has the tool imported already. A fork needs a
single-threaded parent; otherwise, and on Windows, it is spawned.
"""
# Python 3.6 syntax: ruff's upgrades (target py310) are not for this file.
# ruff: noqa: UP031

import json
import os
import runpy
import subprocess
import sys
import threading
import time
import traceback


def mark(nonce, what, data):
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stdout.write("NLPSETUP-" + nonce + " " + what + " " + json.dumps(data) + "\n")
    sys.stdout.flush()


def run_forked(check):
    sys.argv = list(check["argv"])
    try:
        if check["how"] == "module":
            runpy.run_module(check["target"], run_name="__main__", alter_sys=True)
        elif check["how"] == "code":
            exec(compile(check["target"], "<string>", "exec"), {"__name__": "__main__"})
        else:
            runpy.run_path(check["target"], run_name="__main__")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        sys.stderr.write(str(exc.code) + "\n")
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def die_with_parent():
    if sys.platform.startswith("linux"):  # PR_SET_PDEATHSIG: a command never outlives the harness
        try:
            import ctypes
            ctypes.CDLL(None).prctl(1, 9)
        except Exception:
            pass


def launch(i, check):
    out = os.open("command-%d.out" % i, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    t0 = time.perf_counter()
    if check["how"] and hasattr(os, "fork") and threading.active_count() == 1:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                die_with_parent()
                os.dup2(out, 1)
                os.dup2(out, 2)
                code = run_forked(check)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(out)
        return {"i": i, "pid": pid, "t0": t0, "timeout": check["timeout"]}
    try:
        p = subprocess.Popen(check["spawn"], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             preexec_fn=die_with_parent if os.name == "posix" else None)
    except OSError as exc:
        os.write(out, ("cannot run %s: %s\n" % (check["spawn"][0], exc.strerror or exc)).encode())
        return {"i": i, "popen": None, "t0": t0, "timeout": check["timeout"], "code": 127, "seconds": 0.0}
    finally:
        os.close(out)
    return {"i": i, "popen": p, "t0": t0, "timeout": check["timeout"]}


def reap(child):
    # Waits for one command (in a thread, beside the code check), killing it at its limit.
    deadline = child["t0"] + child["timeout"]
    p, timed_out = child.get("popen"), False
    while "code" not in child:
        if p is not None:
            status = p.poll()
            done = status is not None
        else:
            done, status = os.waitpid(child["pid"], os.WNOHANG)
            if done:
                status = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
        if done:
            child["code"], child["seconds"] = status, time.perf_counter() - child["t0"]
        elif time.perf_counter() > deadline:
            timed_out = True
            try:
                if p is not None:
                    p.kill()
                else:
                    os.kill(child["pid"], 9)
            except OSError:
                pass
            deadline = float("inf")
        else:
            time.sleep(0.01)
    child["timed_out"] = timed_out


def report(nonce, child):
    i = child["i"]
    mark(nonce, "show", {"i": i})
    with open("command-%d.out" % i, "rb") as f:
        text = f.read()[-20000:].decode("utf-8", "replace")
    sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    why = "" if child["code"] >= 0 or child["timed_out"] else "killed by signal %d" % -child["code"]
    mark(nonce, "end", {"i": i, "passed": child["code"] == 0 and not child["timed_out"],
                        "seconds": child["seconds"], "why": why, "timed_out": child["timed_out"]})


def main():
    nonce = sys.argv[1]
    with open(sys.argv[2]) as f:
        checks = json.load(f)
    children = []
    for i, check in checks:
        if check["kind"] == "command":
            children.append(launch(i, check))
            continue
        if children and not any(c.get("thread") for c in children):
            for c in children:  # threads only now: every fork is done
                c["thread"] = threading.Thread(target=reap, args=(c,))
                c["thread"].daemon = True
                c["thread"].start()
        mark(nonce, "start", {"i": i})
        t = time.perf_counter()
        passed, why = True, ""
        try:
            if check["kind"] == "imports":
                for name in check["names"]:
                    __import__(name)
            else:
                exec(compile(check["code"], "<smoke code>", "exec"), {"__name__": "__main__"})
        except SystemExit as exc:
            if exc.code not in (None, 0):
                passed, why = False, "exit " + str(exc.code)
        except BaseException:
            passed = False
            kind, value, tb = sys.exc_info()
            sys.stdout.flush()  # the check's own output first: the traceback must not land inside a line
            traceback.print_exception(kind, value, tb.tb_next)  # not the harness's own frame
        mark(nonce, "end", {"i": i, "passed": passed, "seconds": time.perf_counter() - t, "why": why})
    if children:
        mark(nonce, "wait", {})
    for c in children:
        if c.get("thread"):
            c["thread"].join()
        else:
            reap(c)
        report(nonce, c)
    # Skip interpreter teardown (a second or more for torch): every result is out already.
    os._exit(0)


if __name__ == "__main__":
    main()
