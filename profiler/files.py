"""Writing output files without losing data.

No command replaces a file the user did not name, nor one they named without ``--force``, and
none writes onto a database it reads. Every output goes to a temporary file beside the target
and is renamed over it in one step, so an interrupted write leaves the old file (or none),
never half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from profiler.errors import ConfigError

SQLITE_HEADER = b"SQLite format 3\x00"


def is_sqlite_file(path: str | Path) -> bool:
    """Whether ``path`` is an existing SQLite database (by its header)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def check_output_path(path: str | Path, *, force: bool = False, protected: tuple = (),
                      what: str = "output") -> Path:
    """The resolved output path, or ConfigError when writing it would lose data: it is one of
    the ``protected`` files (the databases the command reads), it is a database, it exists and
    ``force`` is not given, or its folder is missing or not writable."""
    target = Path(path).expanduser()
    resolved = target.resolve()
    for p in protected:
        if p and p != ":memory:" and Path(p).expanduser().resolve() == resolved:
            raise ConfigError(f"{what} {path} is the database this command reads: write it to "
                              "another path (etameter never writes over a database it reads)")
    if target.is_dir():
        raise ConfigError(f"{what} {path} is a folder: name a file")
    if target.exists():
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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, output_mode(target))
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target
