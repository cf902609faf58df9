"""Crash-proof replacement of directories and files: a kill at any instant leaves the old or the new one.

Writes go to a hidden sibling (``.NAME.tmp-PID-XXXX``), which then replaces the target:

- a file with one ``os.replace`` (atomic on POSIX and Windows);
- a directory, on Linux, with one ``renameat2(RENAME_EXCHANGE)`` that swaps the new and the old
  directory atomically (the old one, now at the hidden name, is deleted afterwards). Where the
  exchange is unavailable (another OS, a file system without it), the old directory is renamed
  aside (``.NAME.old-PID-XXXX``) and the new one renamed in; a crash between the two leaves the
  old one aside, and :func:`recover` — run before every write and every load — puts it back.

Leftovers of runs that were killed (hidden siblings whose process is gone) are removed by the
next write to the same target.

A directory is replaced only when it is a previous output of the same kind — it holds the ``marker``
file fewshot writes into every such output (``fewshot_config.json`` for a classifier, ``fewshot.json``
for a bundle) — or is empty: anything else, and the current directory or one that contains it, is
refused before any work (:func:`check_replaceable`). What is written gets the permissions the umask
gives (not ``tempfile``'s private 0700/0600).

>>> with atomic_directory("model/") as tmp:
...     (tmp / "weights.safetensors").write_bytes(data)      # model/ appears complete, or not at all
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

from .errors import WriteError

PathArg = Union[str, "os.PathLike[str]"]
_REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
            errno.EACCES: "permission denied", errno.EPERM: "permission denied",
            errno.EROFS: "the file system is read-only"}
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _libc() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "renameat2") else None


_LIBC = _libc()


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2``); False where that is not available."""
    if _LIBC is None:
        return False
    if _LIBC.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(a))


def write_error(exc: OSError, target: Path, what: str) -> WriteError:
    """One line for a failed write: ``out/model: cannot write the classifier (the disk is full); the previous
    one is unchanged`` (or ``nothing was written`` when there was none)."""
    reason = _REASONS.get(exc.errno, exc.strerror or str(exc))
    kept = "the previous one is unchanged" if os.path.lexists(target) else "nothing was written"
    return WriteError(f"{target}: cannot write {what} ({reason}); {kept}")


def _pattern(target: Path, kind: str) -> "re.Pattern[str]":
    return re.compile(rf"^\.{re.escape(target.name)}\.{kind}-(\d+)-")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def recover(target: PathArg) -> None:
    """Put back an old directory a crash left aside, and remove leftovers of dead processes.

    ``model/`` missing but ``.model.old-123-ab/`` present (process 123 gone) → renamed back to ``model/``.
    """
    target = Path(target).absolute()
    if not target.parent.is_dir():
        return
    siblings = sorted(target.parent.iterdir())
    for kind in ("old", "tmp"):
        pattern = _pattern(target, kind)
        for path in siblings:
            match = pattern.match(path.name)
            if not match or _alive(int(match.group(1))) or not os.path.lexists(path):
                continue
            if kind == "old" and not os.path.lexists(target):
                os.rename(path, target)
            else:
                _remove(path)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _sibling(target: Path, kind: str, directory: bool) -> Path:
    prefix = f".{target.name}.{kind}-{os.getpid()}-"
    if directory:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    handle, name = tempfile.mkstemp(prefix=prefix, dir=target.parent)
    os.close(handle)
    os.chmod(name, 0o666 & ~_umask())  # mkstemp makes files private (0600); outputs get the usual permissions
    return Path(name)


def _usual_permissions(root: Path) -> None:
    """Directories ``0777``, files ``0666`` (``0777`` when executable), less the umask: what ``mkdir`` and
    ``open`` give. ``mkdtemp`` and some writers (safetensors) make them private."""
    umask = _umask()
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        full = 0o777 if path.is_dir() or mode & 0o100 else 0o666
        os.chmod(path, full & ~umask)


def check_replaceable(target: PathArg, marker: Optional[str], what: str = "the directory") -> None:
    """Refuse, before any work, an output directory fewshot must not replace: the current directory or
    one containing it, or an existing non-empty directory without ``marker`` (not a previous output of
    this kind). ``proj/`` holding data → ``WriteError: proj: exists and is not a fewshot classifier
    (no fewshot_config.json); fewshot replaces only its own outputs, so choose a new or empty directory``."""
    target = Path(target).absolute()
    cwd = Path.cwd().resolve()
    resolved = target.resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise WriteError(f"{target}: is the current directory or contains it; writing {what} there would replace "
                         "everything in it, so choose a new directory")
    if target.exists() and not target.is_dir():
        raise WriteError(f"{target}: exists and is not a directory; choose another output")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if marker is None or not (target / marker).is_file():
        kind = f"a fewshot {what.removeprefix('the ')}" if marker else "an empty directory"
        raise WriteError(f"{target}: exists and is not {kind}{f' (no {marker})' if marker else ''}; fewshot replaces "
                         "only its own outputs, so choose a new or empty directory")


def check_inputs_outside(target: PathArg, inputs: Iterable[Optional[PathArg]]) -> None:
    """Refuse an output directory that is, or holds, one of the command's inputs (replacing it would delete
    them): ``--checkpoint clf --output clf`` → ``WriteError: clf: is the input clf; choose another output``."""
    target = Path(target).resolve()
    for given in inputs:
        if given is None:
            continue
        path = Path(given).resolve()
        if path == target or target in path.parents:
            raise WriteError(f"{target}: {'is' if path == target else 'holds'} the input {given}; writing there would "
                             "delete it, so choose another output")


@contextlib.contextmanager
def _replacing(target: Path, what: str, directory: bool, install: Callable[[Path, Path], None]) -> Iterator[Path]:
    """Yield a hidden sibling to write; ``install`` then puts it at ``target``. On any error the
    sibling is removed and ``target`` is untouched; an ``OSError`` becomes a one-line ``WriteError``."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover(target)
        tmp = _sibling(target, "tmp", directory)
    except OSError as exc:
        raise write_error(exc, target, what) from None
    try:
        yield tmp
        install(tmp, target)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError):
            raise write_error(exc, target, what) from None
        raise


@contextlib.contextmanager
def atomic_directory(target: PathArg, what: str = "the directory", marker: Optional[str] = None) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``target``, on error it is removed.

    ``target`` must be new, empty, or a previous output holding ``marker`` (:func:`check_replaceable`).
    An ``OSError`` while writing (disk full, permission denied) becomes a one-line ``WriteError``
    that names ``what`` was being written and says the previous directory is unchanged.
    """
    target = Path(target).absolute()
    check_replaceable(target, marker, what)
    with _replacing(target, what, True, _swap_in) as tmp:
        yield tmp
        _usual_permissions(tmp)


def _swap_in(new: Path, target: Path) -> None:
    """Make ``new`` the directory at ``target``; the replaced directory is deleted."""
    if not target.exists():
        os.rename(new, target)
        return
    if exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)
        return
    old = _sibling(target, "old", directory=True)
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: PathArg, what: str = "the file") -> Iterator[Path]:
    """Yield a temporary file path next to ``target``; on success it replaces ``target`` (flushed to
    disk first), on error it is removed and ``target`` is untouched (``OSError`` → ``WriteError``)."""
    with _replacing(Path(target).absolute(), what, False, _flush_and_replace) as tmp:
        yield tmp


def _flush_and_replace(new: Path, target: Path) -> None:
    with open(new, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(new, target)
