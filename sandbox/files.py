"""Writing files in the sandbox directory atomically, and privately where they hold secrets."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_atomic(path: Path, data: bytes, private: bool = False) -> None:
    """Replace `path` with `data` in one rename; `private` makes it readable by the owner only.

    Readers (another process reading credentials, a restart reading state) therefore see the
    old file or the new one, never a torn write.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(tmp, flags, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if private:
            os.chmod(tmp, 0o600)  # the mode given to open() is filtered by the umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
