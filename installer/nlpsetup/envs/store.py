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
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from nlpsetup.base import faults, paths
from nlpsetup.base.errors import EXIT_FAILED, NlpsetupError
from nlpsetup.base.files import write_json_atomic
from nlpsetup.envs.env import Env
from nlpsetup.envs.names import check_env_name

ACTIONS = ("install", "add", "upgrade", "remove")
_TRASH = re.compile(r"\.(.+)\.trash-([0-9]+)")  # paths.trash_name
_JOURNAL_TMP = re.compile(r"\.(.+)\.json\.([0-9]+)\.tmp")  # files.write_json_atomic's temporary file
LOCK_FILE = ".nlpsetup-lock"  # inside an env: its lock, keyed by the folder itself (see EnvStore.lock)


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
        check_env_name(name)
        path = self.path(name)
        if not path.is_dir():
            names = self.names()
            # `install vaderSentiment` names its env as the index normalizes the name: vadersentiment
            same = [n for n in names if canonicalize_name(n) == canonicalize_name(name)]
            hint = (f"did you mean {same[0]}? (an env is named after its tool, normalized as the index does: "
                    f"nlpsetup envs {same[0]})" if same else
                    f"envs here: {', '.join(names)}" if names else "there are no envs yet: nlpsetup install TOOL")
            raise NlpsetupError(f"no env named {name!r}", hint=hint)
        return path

    def check_case(self, name: str) -> None:
        """Refuse a name that differs from an existing env's only in case (exit 2): macOS and
        Windows keep both in one folder, and on Linux two envs a letter's case apart mislead."""
        twin = next((n for n in self.names() if n != name and n.lower() == name.lower()), None)
        if twin is not None:
            raise NlpsetupError(f"env {twin} already exists: {name!r} differs from it only in case",
                                hint=f"use {twin} (nlpsetup envs {twin}), or choose another --name")

    def remove_env(self, name: str, *, wait: bool = True, on_wait: Callable[[], None] | None = None) -> None:
        """Remove an env under its lock, finishing any interrupted change of it first."""
        with self.lock(name, wait=wait, on_wait=on_wait):
            self.recover(name)
            if self.path(name).exists() or self.path(name).is_symlink():
                self.remove(name)

    def names(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.envs) if e.is_dir() and not e.name.startswith("."))
        except OSError:
            return []

    def odd(self, name: str) -> str | None:
        """Why a folder in envs/ is no env for a batch (`upgrade --all`, `verify`) to touch, or None:
        a name nlpsetup never gives an env, or a user's folder (no manifest, no marker). Either is
        passed over with this note and left alone, never deleted."""
        try:
            check_env_name(name)
        except NlpsetupError as exc:
            return f"not an env nlpsetup made ({exc.message.split(': ', 1)[-1]}): left alone"
        env = Env.at(self.path(name))
        if not env.manifest_path.exists() and not env.built_by_nlpsetup():
            return f"not built by nlpsetup (no manifest, no marker): left alone; move it out of {self.envs} if it is yours"
        return None

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
            with self._real_lock(name, wait=wait):
                yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def _real_lock(self, name: str, *, wait: bool) -> Iterator[None]:
        """The env's own lock file inside its folder (reached through a link, that is the link's
        target): two homes that share an env through links then exclude each other, which their
        per-home locks alone would not. Only a folder nlpsetup built gets one (never a user's), and
        one that cannot be written to is not locked (nothing can change it either)."""
        from filelock import FileLock, Timeout

        real = Path(os.path.realpath(self.path(name)))
        lock = FileLock(str(real / LOCK_FILE)) if _built_by_nlpsetup(real) else None
        try:
            if lock is not None:
                lock.acquire(timeout=-1 if wait else 0)
        except Timeout:
            raise EnvBusy(f"env {name!r} ({real}) is being changed by another nlpsetup (through another home)",
                          hint="wait for it to finish, or run again without --no-wait to wait") from None
        except OSError:
            lock = None
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    # --- transactions -------------------------------------------------------------------

    def _journal(self, name: str) -> Path:
        return self.journals / f"{name}.json"

    def _backup(self, name: str) -> Path:
        return self.envs / paths.backup_name(name)

    def _places(self, name: str, snapshot: bool) -> tuple[Path, Path, Path, bool]:
        """(the folder a change replaces, its backup, its snapshot while being made, linked). An
        env reached through a link and changed in place (add, upgrade) is the link's target: its
        snapshot lies beside the target (hard links need the same disk) and the link stays."""
        path = self.path(name)
        if snapshot and path.is_symlink() and path.is_dir():
            real = Path(os.path.realpath(path))
            return (real, real.with_name(f".{real.name}{paths.LINKED_BACKUP}"),
                    real.with_name(f".{real.name}{paths.LINKED_SNAPSHOT}"), True)
        return path, self._backup(name), self.envs / paths.snapshot_name(name), False

    def begin(self, name: str, *, snapshot: bool = False, action: str = "install") -> Transaction:
        """Start changing env `name` (the caller holds its lock): the old env, if any, goes aside.
        With `snapshot` (add, upgrade: the env is changed in place) the old env stays and a
        hard-linked copy becomes the backup, finished under a temporary name first so that
        recovery never restores half a copy. `action` names the change for recovery's message."""
        from nlpsetup.base import proc

        path, backup, partial, linked = self._places(name, snapshot)
        if not linked:  # another home's change of this env through a link, interrupted: not ours to undo
            _clear_stale(_linked_backup(path), linked=True)
        for stale in (backup, partial):  # left by a crash that recovery could not finish
            _clear_stale(stale, linked)
        had_old = path.exists() or path.is_symlink()  # a dangling link too: it goes aside like an env
        record = {"env": name, "action": action, "path": str(path), "backup": str(backup), "had_old": had_old,
                  "linked": linked, "phase": "building", "pid": os.getpid(), "started": time.time(),
                  "ticks": proc.clock_ticks()}
        write_json_atomic(self._journal(name), record)
        try:
            faults.point("before:backup")
            if had_old and snapshot:
                _snapshot(path, partial)
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
        txn = Transaction(self, name, path, backup, had_old, record)
        proc.adopt_orphans()  # what a check abandons becomes ours, so a rollback can stop it
        txn.untrack = proc.track(txn.child_started)  # until commit or rollback
        return txn

    def recover(self, name: str) -> Recovery | None:
        """Finish an interrupted change of env `name` (the caller holds its lock): first stop what
        the killed nlpsetup had started (an orphaned pip would go on writing into the env), then
        put the env set back as before (or as intended, once committed)."""
        jpath = self._journal(name)
        if not jpath.exists():
            return None
        try:
            record = json.loads(jpath.read_text(encoding="utf-8"))
            phase = record.get("phase") if isinstance(record, dict) else "unknown"
        except (OSError, ValueError):
            record, phase = {}, "unknown"  # a truncated journal: decide from what is on disk
        if not isinstance(record, dict):
            record = {}
        from nlpsetup.base import proc

        what = record.get("action") if record.get("action") in ACTIONS else "install"
        path, backup, partial, linked = self._places(name, record.get("linked") is True)
        if record.get("linked") is True and (not linked or str(path) != record.get("path")):
            jpath.unlink(missing_ok=True)  # the link was changed since: what it pointed at is the user's now
            return Recovery(name, f"an interrupted {what} went through a link that has changed since; "
                                  f"nothing was restored (its backup, if any, is {record.get('backup')})")
        proc.kill_recorded(record.get("children"))
        proc.sweep_env(_roots(path), record.get("ticks") if isinstance(record.get("ticks"), int) else None)
        _clear_leftover(partial)  # half a snapshot: this journal proves it ours
        ours = record.get("had_old") is not False  # the backup name held what this change set aside
        if phase == "committed":
            if ours:
                _remove_tree(backup)
            action = f"finished an interrupted {what} (the new env was complete)"
        elif phase == "removing":
            # The user asked for the removal: finish it only if the env was already moved aside; an
            # env still in place stays (no later command deletes what the user may now want).
            trash = record.get("trash")
            if isinstance(trash, str) and Path(trash).parent == self.envs and \
                    paths.leftover_owner(Path(trash).name) == name:
                _remove_tree(Path(trash))
            action = ("finished an interrupted remove" if not path.exists() and not path.is_symlink()
                      else "an interrupted remove had not started: the env is left in place")
        elif ours and (backup.exists() or backup.is_symlink()):
            _remove_tree(path)
            os.rename(backup, path)
            action = f"restored the previous env after an interrupted {what}"
        elif phase == "building" and not record.get("had_old") and path.exists():
            _remove_tree(path)
            action = f"removed a half-built env left by an interrupted {what}"
        else:
            action = f"cleared the record of an interrupted {what} (nothing had changed)"
        jpath.unlink(missing_ok=True)
        return Recovery(name, action)

    def pending(self) -> list[str]:
        """The envs whose journal says a change was interrupted. A journal whose name is no valid
        env name (journal/..json) is never acted on: `invalid_journals` reports it."""
        return [n for n in self._journal_names() if _valid_name(n)]

    def invalid_journals(self) -> list[Path]:
        return [self.journals / f"{n}.json" for n in self._journal_names() if not _valid_name(n)]

    def _journal_names(self) -> list[str]:
        try:
            return sorted(p.name[: -len(".json")] for p in self.journals.iterdir() if p.name.endswith(".json"))
        except OSError:
            return []

    def busy(self, name: str) -> bool:
        """Whether another process holds env `name`'s lock (an install or remove is running)."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.locks / f"{name}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        except OSError:
            return False
        lock.release()
        return False

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

    def leftover_temps(self) -> list[Path]:
        """nlpsetup's own temporary files whose maker is dead (a kill skips every cleanup): trash
        folders in envs/ (`.x.trash-PID`) and half-written journal records (`.x.json.PID.tmp`)."""
        out = []
        folders = [(self.envs, _TRASH)] if not self.envs.is_symlink() else []  # nothing through a linked envs/
        for folder, pattern in (*folders, (self.journals, _JOURNAL_TMP)):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            out += [Path(e.path) for e in entries if (m := pattern.fullmatch(e.name)) and not _pid_alive(int(m[2]))]
        return out

    def clean_leftovers(self) -> list[Recovery]:
        """Delete leftover_temps, each under the lock of the env it belongs to."""
        done = []
        for p in self.leftover_temps():
            owner = (_TRASH if p.parent == self.envs else _JOURNAL_TMP).fullmatch(p.name)[1]
            owner = paths.leftover_owner(p.name) or owner
            try:
                with self.lock(owner, wait=False) if _valid_name(owner) else contextlib.nullcontext():
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
            except EnvBusy:
                continue
            done.append(Recovery(owner, f"removed {p}, left by a killed nlpsetup"))
        return done

    def remove(self, name: str) -> None:
        """Delete an env (the caller holds its lock); journaled so a kill never leaves half of one.
        The env is first moved aside in one rename: if that fails, it is left whole and in place."""
        path = self.path(name)
        trash = self.envs / paths.trash_name(name, os.getpid())
        jpath = self._journal(name)
        write_json_atomic(jpath, {"env": name, "phase": "removing", "pid": os.getpid(), "trash": str(trash)})
        faults.point("before:remove")
        try:
            faults.point("during:remove")
            os.rename(path, trash)
        except OSError as exc:
            jpath.unlink(missing_ok=True)
            raise NlpsetupError(f"cannot remove env {name}: {exc.strerror or exc} ({path}); the env is left in place",
                                hint="fix the cause (permissions, a process using it, a mount) and run remove again",
                                exit_code=EXIT_FAILED) from None
        # The env is out of envs/ now; a kill from here on leaves its trash, which recovery deletes.
        if trash.is_symlink():
            trash.unlink()  # an env kept on another disk: the link goes, what it points at is the user's
        errors = _rmtree_errors(trash) if trash.is_dir() else []
        jpath.unlink(missing_ok=True)
        if errors:
            raise NlpsetupError(f"env {name} is removed from {self.envs}, but {len(errors)} of its files could not "
                                f"be deleted ({errors[0]})", hint=f"delete what is left yourself: rm -rf {trash}",
                                exit_code=EXIT_FAILED)


class Transaction:
    def __init__(self, store: EnvStore, name: str, path: Path, backup: Path, had_old: bool, record: dict):
        self.store, self.name, self.path, self.backup, self.had_old = store, name, path, backup, had_old
        self.committed = False
        self.record = record
        self._write = threading.Lock()  # smoke checks start children from several threads
        self.untrack: Callable[[], None] = lambda: None

    def child_started(self, child: dict) -> None:
        """Record a process started for this change (pid, start time, token), so that recovery after
        a kill can stop it before it touches the env again."""
        with self._write:
            if self.committed:
                return
            self.record = {**self.record, "children": [*self.record.get("children", []), child]}
            write_json_atomic(self.store._journal(self.name), self.record)

    def commit(self) -> None:
        self.untrack()
        jpath = self.store._journal(self.name)
        write_json_atomic(jpath, {"env": self.name, "action": self.record.get("action"), "phase": "committed",
                                  "linked": self.record.get("linked"), "path": self.record.get("path"),
                                  "had_old": self.had_old, "pid": os.getpid()})
        self.committed = True  # from here on the new env stands, whatever happens next
        faults.point("during:commit")
        if self.had_old:
            _remove_tree(self.backup)  # a symlink is unlinked (rmtree refuses one and would leave it)
        jpath.unlink(missing_ok=True)

    def rollback(self, *, keep_failed: bool = False) -> str:
        """Undo: remove the half-built env (or keep it, with --keep-failed) and put the old one back."""
        self.untrack()
        if self.committed:
            if self.had_old:
                _remove_tree(self.backup)
            self.store._journal(self.name).unlink(missing_ok=True)
            return "the install had completed, so the new env stays"
        from nlpsetup.base import proc

        # Whatever the change started (a check's daemon in a session of its own) is stopped first:
        # it would otherwise go on writing into the env put back below.
        proc.sweep_env([*_roots(self.path), *_roots(self.backup)], self.record.get("ticks"))
        kept = ""
        if self.path.exists():
            if keep_failed and not self.had_old:
                kept = str(self.path)  # a new install kept where it was built, for inspection
            elif keep_failed:
                kept_path = _free_failed_name(self.store.envs, self.name)
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


def _roots(path: Path) -> list[str]:
    """An env's folder as a process may name it: as given, and its real path (through a link)."""
    return [os.path.abspath(path), os.path.realpath(path)]


def _linked_backup(path: Path) -> Path:
    real = Path(os.path.realpath(path))
    return real.with_name(f".{real.name}{paths.LINKED_BACKUP}")


def _built_by_nlpsetup(p: Path) -> bool:
    return Env.at(p).built_by_nlpsetup()


def _clear_stale(p: Path, linked: bool) -> None:
    """Clear the way for a backup or snapshot: a link is unlinked (what it points at stays), a copy
    of an env nlpsetup built (its marker) is deleted; anything else is refused, never deleted. Beside
    a link's target nothing is deleted: it may be the backup of another home's interrupted change."""
    if not p.exists() and not p.is_symlink():
        return
    if p.is_symlink():
        p.unlink()
        return
    if not linked and _built_by_nlpsetup(p):
        _remove_tree(p)
        return
    why = ("it may be the backup of an interrupted change made through another home that shares this env: "
           "any nlpsetup command in that home finishes it" if linked else "it carries no mark of nlpsetup's")
    raise NlpsetupError(f"{p} is in the way and nlpsetup cannot prove it made it ({why}); nothing was changed",
                        hint=f"move it away if it is yours, or delete it: rm -r {p}")


def _clear_leftover(p: Path) -> None:
    """Remove what a journal proves nlpsetup made (half a snapshot)."""
    if p.exists() or p.is_symlink():
        _remove_tree(p)


def _free_failed_name(envs: Path, name: str) -> Path:
    """Where --keep-failed keeps a failed env: `name.failed`, replacing only a failed env nlpsetup
    kept there before (its marker, no manifest); else the first free `name.failed-N`."""
    n = 1
    while True:
        p = envs / paths.failed_name(name, n)
        if not p.exists() and not p.is_symlink():
            return p
        if not p.is_symlink() and Env.at(p).marker_path.is_file() and not Env.at(p).manifest_path.exists():
            _remove_tree(p)
            return p
        n += 1


def _snapshot(src: Path, dst: Path) -> None:
    """_link_copy, with a full disk said in one line (a copy that fails lists every file)."""
    import errno

    try:
        _link_copy(src, dst)
    except (shutil.Error, OSError) as exc:
        problems = exc.args[0] if isinstance(exc, shutil.Error) and isinstance(exc.args[0], list) else [exc]
        full = [x for x in problems if getattr(x, "errno", None) == errno.ENOSPC or "[Errno 28]" in str(x)]
        what = _what_is_full(dst.parent) if full else ""  # before the copy is deleted, which frees them
        shutil.rmtree(dst, ignore_errors=True)
        where = _mount_point(dst.parent)
        if full:
            raise NlpsetupError(f"disk full: {what} on {where} for a snapshot of {src.name} (its hard-linked "
                                "backup needs an inode per folder and file); the env is unchanged",
                                hint=f"free space or inodes on {where} (nlpsetup remove an unused env), "
                                     "then run this again", exit_code=EXIT_FAILED) from None
        first = problems[0][-1] if isinstance(problems[0], tuple) else str(problems[0])
        raise NlpsetupError(f"cannot snapshot {src.name} before changing it: {len(problems)} file(s) could not "
                            f"be copied (first: {first}); the env is unchanged",
                            hint="fix the cause (permissions, the disk), then run this again",
                            exit_code=EXIT_FAILED) from None


def _what_is_full(folder: Path) -> str:
    """"no inodes left" when files, not bytes, ran out (many small files: a virtualenv)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return "no space left"
    inodes_out = st.f_files > 0 and st.f_favail < 64
    return "no inodes left" if inodes_out and st.f_bavail * st.f_frsize > 2**20 else "no space left"


def _mount_point(p: Path) -> str:
    p = Path(os.path.realpath(p))
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return str(p)


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


def _remove_tree(path: Path, *, rename: bool = True) -> None:
    """Remove a directory by renaming it aside first, so a kill mid-way leaves no half env. A
    symlink (an env kept on another disk) is unlinked: what it points at is not ours."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    trash = path
    if rename and paths.TRASH_INFIX not in path.name:  # a trash folder already: delete it where it is
        trash = path.with_name(paths.trash_name(path.name.lstrip("."), os.getpid()))
        if trash.exists() and not trash.is_symlink():  # the trash of a dead process that had our pid
            shutil.rmtree(trash, ignore_errors=True)
        os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _rmtree_errors(path: Path) -> list[str]:
    """Delete a tree as far as possible; what could not be deleted, one line each."""
    errors: list[str] = []

    def note(_func, p, exc) -> None:
        errors.append(f"{p}: {getattr(exc, 'strerror', None) or exc}")

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=note)
    else:
        shutil.rmtree(path, onerror=lambda f, p, info: note(f, p, info[1]))
    return errors


def _valid_name(name: str) -> bool:
    try:
        check_env_name(name)
    except NlpsetupError:
        return False
    return True


def recover_interrupted(home: Path) -> list[Recovery]:
    """Finish what a killed nlpsetup left half-done (its journal says what), and delete its
    temporary files, before anything else."""
    store = EnvStore(home)
    cleaned = store.clean_leftovers()
    try:
        if not any(paths.journal_dir(home).iterdir()):
            return cleaned
    except OSError:
        return cleaned  # no journal folder: nothing was interrupted (the common, cheap case)
    return cleaned + store.recover_all()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
