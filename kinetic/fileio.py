"""Atomic file output (a bottom-layer utility every layer may use).

Outputs are written to a temporary file in the destination folder and renamed when complete,
so a failed or killed run never leaves a half-written table, field or model file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kinetic.errors import ConfigError


def atomic_write(path, data: bytes | str, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temporary file + rename; ConfigError if impossible.

    The file gets the permissions of a plain create (mkstemp makes it 0600); ``fsync`` forces
    the data to disk before the rename (checkpoints)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ConfigError(f"output {str(path)!r}: directory {str(directory)!r} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise ConfigError(f"output {str(path)!r}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except OSError as exc:  # disk full, quota, permissions: a user-facing error, nothing left
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"output {str(path)!r}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
