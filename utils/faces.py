"""What every command-line face shares: the library raises, the face exits. A user-facing error (a bad option,
file, checkpoint or dataset) becomes one ``error:`` line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from typing import Any


class UserFacingError(Exception):
    """Mixed into the library's errors whose message is written for the user (checkpoints, stopped runs)."""


USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, UserFacingError)
# places the user chose that cannot be written: a read-only folder or file system, a full disk
PLACE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def run_face(job: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``job(*args, **kwargs)``; a user-facing error exits with its one line."""
    try:
        return job(*args, **kwargs)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as exc:
        if exc.errno not in PLACE_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(1) from None
