"""The folder of envs: per-env locks, a journal for every change, backup and restore.

Every change to an env is a transaction recorded in home/journal/NAME.json before anything
moves: the old env is renamed aside (never copied: virtualenvs are not relocatable), the new
one is built in place, and then either the backup is dropped (commit) or the half-built env is
removed and the backup renamed back (rollback). A process killed at any point leaves a journal;
whoever next takes the env's lock finishes the job, so the env set is always as before or as
intended, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nlpsetup import faults, paths
from nlpsetup.errors import EXIT_FAILED, NlpsetupError
from nlpsetup.files import write_json_atomic


class EnvBusy(NlpsetupError):
    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class Recovery:
    env: str
    action: str  # what was done, for the user


class EnvStore:
    def __init__(self, home: Path):
        self.home = home
        self.envs = paths.envs_dir(home)
        self.locks = paths.locks_dir(home)
        self.journals = paths.journal_dir(home)

    def path(self, name: str) -> Path:
        return self.envs / name

    def existing(self, name: str) -> Path:
        """The folder of an env the user named, or an error listing the envs there are."""
        from nlpsetup.resolve import check_env_name

        check_env_name(name)
        path = self.path(name)
        if not path.is_dir():
            names = self.names()
            hint = f"envs here: {', '.join(names)}" if names else "there are no envs yet: nlpsetup install TOOL"
            raise NlpsetupError(f"no env named {name!r}", hint=hint)
        return path

    def remove_env(self, name: str, *, wait: bool = True, on_wait: Callable[[], None] | None = None) -> None:
        """Remove an env under its lock, finishing any interrupted change of it first."""
        with self.lock(name, wait=wait, on_wait=on_wait):
            self.recover(name)
            if self.path(name).exists():
                self.remove(name)

    def names(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.envs) if e.is_dir() and not e.name.startswith("."))
        except OSError:
            return []

    # --- locking ------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str, *, wait: bool = True, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        from filelock import FileLock, Timeout

        self.locks.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.locks / f"{name}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not wait:
                raise EnvBusy(f"env {name!r} is being changed by another nlpsetup",
                              hint="wait for it to finish, or run again without --no-wait to wait") from None
            if on_wait:
                on_wait()
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    # --- transactions -------------------------------------------------------------------

    def _journal(self, name: str) -> Path:
        return self.journals / f"{name}.json"

    def begin(self, name: str, *, snapshot: bool = False) -> Transaction:
        """Start changing env `name` (the caller holds its lock): the old env, if any, goes aside.
        With `snapshot` (add, upgrade: the env is changed in place) the old env stays and a
        hard-linked copy becomes the backup, finished under a temporary name first so that
        recovery never restores half a copy."""
        path = self.path(name)
        backup = self.envs / f".{name}.backup"
        partial = self.envs / f".{name}.snapshot"
        for stale in (backup, partial):  # left by a crash that recovery could not finish: not ours to keep
            shutil.rmtree(stale, ignore_errors=True)
        had_old = path.exists()
        record = {"env": name, "path": str(path), "backup": str(backup), "had_old": had_old,
                  "phase": "building", "pid": os.getpid(), "started": time.time()}
        write_json_atomic(self._journal(name), record)
        try:
            faults.point("before:backup")
            if had_old and snapshot:
                _link_copy(path, partial)
                os.rename(partial, backup)
            elif had_old:
                os.rename(path, backup)
            faults.point("after:backup")
            self.envs.mkdir(parents=True, exist_ok=True)
        except BaseException:  # Ctrl-C before the transaction exists: put things back ourselves
            if had_old and backup.exists() and not path.exists():
                os.rename(backup, path)
            if snapshot:  # the env itself never moved: drop the copy
                shutil.rmtree(backup, ignore_errors=True)
            shutil.rmtree(partial, ignore_errors=True)
            self._journal(name).unlink(missing_ok=True)
            raise
        return Transaction(self, name, path, backup, had_old)

    def recover(self, name: str) -> Recovery | None:
        """Finish an interrupted change of env `name` (the caller holds its lock)."""
        jpath = self._journal(name)
        if not jpath.exists():
            return None
        path, backup = self.path(name), self.envs / f".{name}.backup"
        try:
            record = json.loads(jpath.read_text())
            phase = record.get("phase")
        except (OSError, ValueError):
            phase = "unknown"  # a truncated journal: decide from what is on disk
        if phase == "committed":
            shutil.rmtree(backup, ignore_errors=True)
            action = "finished an interrupted install (the new env was complete)"
        elif backup.exists():
            _remove_tree(path)
            os.rename(backup, path)
            action = "restored the previous env after an interrupted install"
        elif phase == "building" and not record.get("had_old") and path.exists():
            _remove_tree(path)
            action = "removed a half-built env left by an interrupted install"
        elif phase == "removing":
            _remove_tree(path)
            action = "finished an interrupted remove"
        else:
            action = "cleared the record of an interrupted install (nothing had changed)"
        jpath.unlink(missing_ok=True)
        return Recovery(name, action)

    def pending(self) -> list[str]:
        try:
            return sorted(p.stem for p in self.journals.glob("*.json"))
        except OSError:
            return []

    def recover_all(self) -> list[Recovery]:
        """Recover every interrupted change whose owner is gone (its lock is free)."""
        done = []
        for name in self.pending():
            try:
                with self.lock(name, wait=False):
                    if r := self.recover(name):
                        done.append(r)
            except EnvBusy:
                continue  # still being worked on by a live process
        return done

    def remove(self, name: str) -> None:
        """Delete an env (the caller holds its lock); journaled so a kill never leaves half of one."""
        write_json_atomic(self._journal(name), {"env": name, "phase": "removing", "pid": os.getpid()})
        trash = self.envs / f".{name}.trash-{os.getpid()}"
        os.rename(self.path(name), trash)
        shutil.rmtree(trash, ignore_errors=True)
        self._journal(name).unlink(missing_ok=True)


class Transaction:
    def __init__(self, store: EnvStore, name: str, path: Path, backup: Path, had_old: bool):
        self.store, self.name, self.path, self.backup, self.had_old = store, name, path, backup, had_old
        self.committed = False

    def commit(self) -> None:
        jpath = self.store._journal(self.name)
        write_json_atomic(jpath, {"env": self.name, "phase": "committed", "pid": os.getpid()})
        self.committed = True  # from here on the new env stands, whatever happens next
        faults.point("during:commit")
        shutil.rmtree(self.backup, ignore_errors=True)
        jpath.unlink(missing_ok=True)

    def rollback(self, *, keep_failed: bool = False) -> str:
        """Undo: remove the half-built env (or keep it, with --keep-failed) and put the old one back."""
        if self.committed:
            shutil.rmtree(self.backup, ignore_errors=True)
            self.store._journal(self.name).unlink(missing_ok=True)
            return "the install had completed, so the new env stays"
        kept = ""
        if self.path.exists():
            if keep_failed and not self.had_old:
                kept = str(self.path)  # a new install kept where it was built, for inspection
            elif keep_failed:
                kept_path = self.store.envs / f"{self.name}.failed"
                _remove_tree(kept_path)
                os.rename(self.path, kept_path)
                kept = str(kept_path)
            else:
                _remove_tree(self.path)
        if self.had_old and self.backup.exists():
            os.rename(self.backup, self.path)
            what = "the previous env is back in place"
        else:
            what = "nothing was left behind" if not kept else "nothing else changed"
        self.store._journal(self.name).unlink(missing_ok=True)
        return what + (f"; the failed env is kept at {kept}" if kept else "")


def _link_copy(src: Path, dst: Path) -> None:
    """Copy a tree as hard links (a copy where linking fails): cheap for multi-GB envs, and safe
    as a backup because pip and uv never write into an installed file: pip unlinks before it
    writes and stashes uninstalled files by renaming, uv removes and links, and nlpsetup writes
    its own files by atomic rename."""
    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, symlinks=True, copy_function=link)


def _remove_tree(path: Path) -> None:
    """Remove a directory by renaming it aside first, so a kill mid-way leaves no half env."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    trash = path.with_name(f".{path.name}.trash-{os.getpid()}")
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def recover_interrupted(home: Path) -> list[Recovery]:
    """Finish what a killed nlpsetup left half-done (its journal says what), before anything else."""
    try:
        if not any(paths.journal_dir(home).iterdir()):
            return []
    except OSError:
        return []  # no journal folder: nothing was interrupted (the common, cheap case)
    return EnvStore(home).recover_all()
