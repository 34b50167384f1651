"""utils/faces.py: what a face prints for the library's user-facing errors and for places it cannot write."""

from __future__ import annotations

import errno
import os

import pytest

from utils.faces import run_face


def test_a_user_error_is_one_line_and_exit_1(capsys):
    def bad():
        raise ValueError("--imgsz must be >= 32")

    with pytest.raises(SystemExit) as stop:
        run_face(bad)
    assert stop.value.code == 1 and capsys.readouterr().err == "error: --imgsz must be >= 32\n"


def test_a_place_that_cannot_be_written_is_one_line_naming_it(capsys, tmp_path):
    def write():
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "ro" / "exp"))

    with pytest.raises(SystemExit):
        run_face(write)
    assert capsys.readouterr().err == f"error: {tmp_path / 'ro' / 'exp'}: Permission denied\n"


def test_other_os_errors_are_not_hidden():
    def broken():
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError):
        run_face(broken)
