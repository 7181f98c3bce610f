"""Container engines (docker, podman, buildah) through `proc`: which one this machine can use, and
the few things nlpsetup asks of it (build, run the checks, tag, push, remove, size). What an engine
prints when it fails is turned into one line with its fix (`explain`), from the engines' own
messages (tests/data/engine_errors/ holds real ones).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from nlpsetup.base import proc
from nlpsetup.base.errors import EXIT_FAILED, EXIT_REFUSED, NlpsetupError

ENGINES = ("docker", "podman", "buildah")
_LOCAL_REGISTRY = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?/")


@dataclass(frozen=True)
class Engine:
    name: str  # docker | podman | buildah
    path: str

    def build_argv(self, context: Path, iidfile: Path) -> list[str]:
        verb = ["bud"] if self.name == "buildah" else ["build"]
        return [self.path, *verb, "--iidfile", str(iidfile), "-f", str(context / "Containerfile"), str(context)]

    def run_argv(self, image: str, argv: list[str], container: str) -> tuple[list[list[str]], list[str], list[list[str]]]:
        """(before, run, after): the commands that run argv in a fresh container of image, with no
        network, and remove it (buildah: a working container made, run in, removed)."""
        if self.name == "buildah":
            return ([[self.path, "from", "--pull-never", "--name", container, image]],
                    [self.path, "run", "--network", "none", container, "--", *argv],
                    [[self.path, "rm", container]])
        return [], [self.path, "run", "--rm", "--network", "none", "--pull", "never", image, *argv], []

    def has_image_argv(self, image: str) -> list[str]:
        if self.name == "buildah":
            return [self.path, "inspect", "--type", "image", image]
        return [self.path, "image", "inspect", image]

    def pull_argv(self, image: str) -> list[str]:
        return [self.path, "pull", image]

    def tag_argv(self, image: str, tag: str) -> list[str]:
        return [self.path, "tag", image, tag]

    def remove_argv(self, image: str) -> list[str]:
        return [self.path, "rmi", "--force", image] if self.name != "buildah" else [self.path, "rmi", image]

    def push_argv(self, tag: str) -> list[str]:
        if self.name == "docker":
            return [self.path, "push", tag]  # the daemon trusts localhost registries over plain HTTP
        tls = ["--tls-verify=false"] if _LOCAL_REGISTRY.match(tag) else []
        return [self.path, "push", *tls, tag, f"docker://{tag}"]

    def size_argv(self, image: str) -> list[str]:
        if self.name == "buildah":
            return [self.path, "images", "--noheading", "--no-trunc", "--format", "{{.ID}} {{.Size}}"]
        return [self.path, "image", "inspect", "--format", "{{.Size}}", image]


def detect(requested: str | None, which=shutil.which, env: dict | None = None) -> Engine:
    """The engine to use: the one asked for, else the first usable of docker (its daemon
    answering), podman, buildah. None usable: one line saying why, with the fix."""
    env = env if env is not None else proc.child_env()
    names = [requested] if requested else list(ENGINES)
    found = [(n, which(n)) for n in names if which(n)]
    if not found:
        what = requested or "docker, podman or buildah"
        raise NlpsetupError(f"no container engine found ({what} is not on PATH)",
                            hint="install one (apt-get install podman, or buildah; or Docker), or write the "
                                 "build context with --containerfile DIR and build it elsewhere",
                            exit_code=EXIT_REFUSED)
    first_error = None
    for name, path in found:
        # A cheap question that fails as a build would (docker: no daemon; rootless podman or
        # buildah: no subuid range, unwritable storage), asked before minutes of downloads.
        query = ["version", "--format", "{{.Server.Version}}"] if name == "docker" else ["info"]
        code, out = proc.capture([path, *query], env=env, timeout=60, merge_stderr=True)
        if code == 0:
            return Engine(name, path)
        first_error = first_error or explain(name, out) or NlpsetupError(
            f"{name} does not work here: {last_line(out)}",
            hint=f"see: {name} {' '.join(query[:1])}; or use another engine (--engine)", exit_code=EXIT_REFUSED)
    assert first_error is not None
    raise first_error


def last_line(text: str) -> str:
    """The last non-blank line of what an engine printed: its error, where nothing better is known."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


# Substrings of what the engines print, each with the one-line cause and the fix.
_PULL = ("pull access denied", "manifest unknown", "repository does not exist", "pinging container registry",
         "initializing source docker://", "failed to resolve source metadata", "error pulling image",
         "not found: manifest unknown", "no such host", "requested access to the resource is denied")


def explain(engine: str, output: str, base: str | None = None) -> NlpsetupError | None:
    """The engine's failure as one line with its fix, or None where nlpsetup does not know it."""
    text = output.lower()
    if "cannot connect to the docker daemon" in text or "is the docker daemon running" in text:
        return NlpsetupError("docker is installed but its daemon is not running",
                             hint="start it (sudo systemctl start docker), or use --engine podman or --engine "
                                  "buildah", exit_code=EXIT_REFUSED)
    if "permission denied" in text and ("docker.sock" in text or "docker daemon socket" in text):
        return NlpsetupError("docker: permission denied on the daemon's socket",
                             hint="add yourself to the docker group (sudo usermod -aG docker $USER, then log in "
                                  "again), or use rootless podman: --engine podman", exit_code=EXIT_REFUSED)
    if base and any(s in text for s in _PULL):
        why = next((ln.strip() for ln in output.splitlines() if any(s in ln.lower() for s in _PULL)), "")
        if len(why) > 300:  # the engine's words at both ends: what failed, and why (no such host)
            why = f"{why[:200]} ... {why[-95:]}"
        return NlpsetupError(f"the base image {base} cannot be pulled: {why}",
                             hint=f"check the name and the network, or get it onto this machine first "
                                  f"({engine} pull / {engine} load), or pass --base with an image "
                                  f"{engine} has locally", exit_code=EXIT_FAILED)
    if "permission denied" in text or "operation not permitted" in text:
        why = next((ln.strip() for ln in output.splitlines() if "permission denied" in ln.lower()
                    or "operation not permitted" in ln.lower()), "")
        return NlpsetupError(f"{engine}: permission denied: {why[-300:]}",
                             hint=f"run as root, or set up rootless {engine} (a range for your user in /etc/subuid "
                                  f"and /etc/subgid: sudo usermod --add-subuids 100000-165535 --add-subgids "
                                  f"100000-165535 $USER)", exit_code=EXIT_REFUSED)
    return None


def size_of(engine: Engine, image: str, output: str) -> int | None:
    """The image's size in bytes from size_argv's output (buildah prints '226 MB' per image)."""
    if engine.name != "buildah":
        return int(output.strip()) if output.strip().isdigit() else None
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].removeprefix("sha256:") == image.removeprefix("sha256:"):
            units = {"B": 1, "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}
            try:
                return int(float(parts[1]) * units[parts[2]])
            except (ValueError, KeyError):
                return None
    return None
