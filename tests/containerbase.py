"""An offline base image for the image tests: no image registry is reachable from the test
machines, so a minimal Debian bookworm with python3 and python3-venv is made with debootstrap
from Debian's archive, kept once per machine as a rootfs tarball under CACHE, and imported into
buildah's storage (`FROM scratch` + `ADD rootfs.tar /`) under BASE_NAME.

Run as a script to make the cache ahead of time: python tests/containerbase.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("NLPSETUP_TEST_IMAGE_CACHE", "/var/cache/nlpsetup-test"))
ROOTFS_TAR = CACHE / "bookworm-python3.tar"
BASE_NAME = "localhost/nlpsetup-test-base:bookworm"
MIRROR = "http://deb.debian.org/debian"
# buildah as root in this sandbox: the vfs driver (no overlay mounts) and chroot isolation.
ENGINE_ENV = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}


def missing() -> str | None:
    """Why the real image tests cannot run here, or None."""
    if not shutil.which("buildah"):
        return "buildah is not installed (apt-get install buildah)"
    if os.geteuid() != 0:
        return "the image tests run buildah as root (vfs storage, chroot isolation)"
    if not ROOTFS_TAR.is_file() and not shutil.which("debootstrap"):
        return f"no cached base rootfs ({ROOTFS_TAR}) and no debootstrap to make one (apt-get install debootstrap)"
    return None


def engine_env() -> dict:
    return {**os.environ, **ENGINE_ENV}


def rootfs_tar() -> Path:
    """The cached rootfs tarball, made with debootstrap on first use (a few minutes)."""
    if ROOTFS_TAR.is_file():
        return ROOTFS_TAR
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="debootstrap-") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv", "bookworm",
                        str(root), MIRROR], check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        part = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "--exclude=./proc/*", "--exclude=./sys/*",
                        "-cf", str(part), "."], check=True)
        os.replace(part, ROOTFS_TAR)  # whole or absent: a killed run leaves no half tarball
    return ROOTFS_TAR


def ensure_base() -> str:
    """BASE_NAME in buildah's storage, imported from the cached rootfs when absent."""
    env = engine_env()
    if subprocess.run(["buildah", "inspect", "--type", "image", BASE_NAME], env=env,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
        return BASE_NAME
    tar = rootfs_tar()
    with tempfile.TemporaryDirectory(prefix="nlpsetup-base-") as ctx:
        os.link(tar, Path(ctx) / "rootfs.tar") if os.stat(tar).st_dev == os.stat(ctx).st_dev \
            else shutil.copyfile(tar, Path(ctx) / "rootfs.tar")
        (Path(ctx) / "Containerfile").write_text(
            'FROM scratch\nADD rootfs.tar /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n'
            'CMD ["/bin/bash"]\n')
        subprocess.run(["buildah", "bud", "--isolation", "chroot", "-q", "-t", BASE_NAME, ctx], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    return BASE_NAME


if __name__ == "__main__":
    why = missing()
    if why:
        sys.exit(f"cannot: {why}")
    print(ensure_base())
