"""Writing output files without losing data.

No command replaces a file the user did not name, nor one they named without ``--force``, and
none writes onto a database it reads. Every output goes to a temporary file beside the target
and is renamed over it in one step, so an interrupted write leaves the old file (or none),
never half a file. Inputs and outputs must be regular files: a FIFO, a device or a socket
would block or be consumed (``check_input_file``, ``check_output_path``), and a symbolic link
is never replaced. A database's ``-wal``, ``-shm`` and ``-journal`` files are protected with it.
OS errors (a path too long, a full disk) become one-line messages (``os_error_text``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable

from profiler.errors import ConfigError

SQLITE_HEADER = b"SQLite format 3\x00"
#: The files SQLite keeps beside a database: written over, they damage it.
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))
_HINTS = {errno.ENOSPC: "the disk is full: free space or choose a path on another disk",
          errno.EDQUOT: "the disk quota is exceeded: free space or choose another path",
          errno.ENAMETOOLONG: "the path or one of its names is too long: choose a shorter path",
          errno.EROFS: "the file system is read-only: choose a writable path",
          errno.EACCES: "permission denied: choose a path you can write, or fix its permissions",
          errno.ELOOP: "too many symbolic links: name the file itself"}


def os_error_text(e: OSError, path: str | Path | None = None) -> str:
    """One line for an OS error: what failed, on which path, and what to do."""
    where = path if path is not None else (e.filename or "")
    hint = _HINTS.get(e.errno) or (e.strerror or str(e))
    shown = str(where)
    if len(shown) > 120:
        shown = shown[:60] + "..." + shown[-40:]
    return f"{shown}: {hint}" if shown else hint


def file_kind(mode: int) -> str | None:
    """What a stat mode names when it is not a regular file (None for a regular file)."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "not a regular file"


def check_input_file(path: str | Path, what: str = "file", error=ConfigError,
                     missing: str | None = None) -> Path:
    """``path`` when it is a regular file (links followed), before anything opens it: a FIFO
    or a device would block or be consumed. Otherwise ``error`` naming the problem
    (``missing``: the message for a path that does not exist)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(missing or f"no such {what}: {path}") from None
    except OSError as e:
        raise error(f"cannot read {what} {os_error_text(e, path)}") from None
    kind = file_kind(mode)
    if kind is not None:
        raise error(f"{what} {path} is {kind}, not a regular file: name a file")
    return Path(path)


def is_sqlite_file(path: str | Path) -> bool:
    """Whether ``path`` is an existing SQLite database (by its header). Only regular files are
    opened: reading a FIFO or a terminal would block."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def _protected_paths(protected: tuple) -> set[Path]:
    out = set()
    for p in protected:
        if p and p != ":memory:":
            base = Path(p).expanduser().resolve()
            out.add(base)
            out.update(base.with_name(base.name + suffix) for suffix in SQLITE_SIDECARS)
    return out


def check_output_path(path: str | Path, *, force: bool = False, protected: tuple = (),
                      what: str = "output") -> Path:
    """The output path, or ConfigError when writing it would lose data or block: it is one of
    the ``protected`` files (the databases the command reads, and their -wal, -shm and
    -journal files), a symbolic link, a FIFO, device or socket (even with ``force``), a
    database, it exists and ``force`` is not given, or its folder is missing or not
    writable."""
    if str(path) == "":
        raise ConfigError(f"the {what} path is empty: name a file")
    try:
        return _check_output_path(Path(path).expanduser(), path, force, protected, what)
    except OSError as e:
        raise ConfigError(f"cannot write {what} {os_error_text(e, path)}") from None


def _check_output_path(target: Path, path, force: bool, protected: tuple, what: str) -> Path:
    resolved = target.resolve()
    if resolved in _protected_paths(protected) or target.absolute() in _protected_paths(protected):
        raise ConfigError(f"{what} {path} is the database this command reads (or one of its "
                          "-wal, -shm or -journal files): write it to another path (etameter "
                          "never writes over a database it reads)")
    if target.is_symlink():
        raise ConfigError(f"{what} {path} is a symbolic link (to {os.readlink(target)}): "
                          "etameter does not write through or replace links; name a file")
    if target.exists():
        kind = file_kind(target.stat().st_mode)
        if kind == "a folder":
            raise ConfigError(f"{what} {path} is a folder: name a file")
        if kind is not None:
            raise ConfigError(f"{what} {path} is {kind}, not a regular file: etameter writes "
                              "only regular files, even with --force; name a file")
        if is_sqlite_file(target):
            raise ConfigError(f"{what} {path} is an existing SQLite database: etameter will "
                              "not overwrite it, even with --force; choose another path")
        if not force:
            raise ConfigError(f"{what} {path} exists: pass --force to replace it, or choose "
                              "another path")
    folder = resolved.parent
    if not folder.is_dir():
        raise ConfigError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"cannot write {path}: folder {folder} is not writable")
    return target


def output_mode(target: str | Path) -> int:
    """The permissions a new output file gets: those of the file it replaces, else what
    ``open()`` would give (0666 less the umask), not mkstemp's private 0600."""
    try:
        return os.stat(target).st_mode & 0o777
    except OSError:
        mask = os.umask(0)  # the only portable way to read the umask is to set it
        os.umask(mask)
        return 0o666 & ~mask


def write_atomically(path: str | Path, write: Callable[[str], None], *, force: bool = False,
                     protected: tuple = (), what: str = "output") -> Path:
    """Check ``path`` (see :func:`check_output_path`), let ``write(tmp_path)`` fill a temporary
    file beside it, give it the permissions of ``output_mode``, then rename it into place.
    Nothing is left behind on failure."""
    target = check_output_path(path, force=force, protected=protected, what=what)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".tmp",
                                   dir=target.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, output_mode(target))
        os.replace(tmp, target)
    except OSError as e:
        raise ConfigError(f"cannot write {what} {os_error_text(e, path)}; nothing was "
                          "written") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return target


@contextlib.contextmanager
def discard_if_new_and_empty(path: str | Path | None):
    """Around an operation that creates the database ``path`` if missing: when the operation
    fails and the file did not exist before, the new file (and its -wal, -shm and -journal
    files) is removed, provided it holds no run and no calibration (another process may have
    written into it meanwhile). A failed command leaves no empty database behind."""
    existed = path in (None, "", ":memory:") or os.path.lexists(path)
    try:
        yield
    except BaseException:
        if not existed and os.path.isfile(path) and _holds_nothing(path):
            for name in (str(path), *(str(path) + s for s in SQLITE_SIDECARS)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
        raise


def _holds_nothing(path) -> bool:
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=1.0)
        try:
            tables = {r[0] for r in conn.execute("select name from sqlite_master")}
            return all(conn.execute(f"select count(*) from {t}").fetchone()[0] == 0
                       for t in ("runs", "calibrations") if t in tables)
        finally:
            conn.close()
    except sqlite3.Error:
        return False
