"""scripts/fd_io.py: copy_range copies the same bytes whichever way it can (copy_file_range,
sendfile where copy_file_range refuses, as between file systems, a buffer where neither
exists), and says so when the source ends early."""
from __future__ import annotations

import errno
import os

import pytest

from scripts import fd_io

DATA = bytes(range(256)) * 1200  # 300 KB


def _exdev(*args):
    raise OSError(errno.EXDEV, "Invalid cross-device link")


@pytest.mark.parametrize("way", ["copy_file_range", "sendfile", "buffer"])
def test_copy_range_copies_the_range_every_way(tmp_path, monkeypatch, way):
    if way != "copy_file_range":
        monkeypatch.setattr(os, "copy_file_range", _exdev, raising=False)
    if way == "buffer":
        monkeypatch.delattr(os, "sendfile", raising=False)
    src = fd_io.unnamed_temp(str(tmp_path))
    dst = fd_io.unnamed_temp(str(tmp_path))
    try:
        fd_io.write_all(src, DATA)
        fd_io.write_all(dst, b"head")
        fd_io.copy_range(src, dst, 1000, 250_000)
        fd_io.copy_range(src, dst, 0, 0)
        assert os.pread(dst, len(DATA), 0) == b"head" + DATA[1000:251_000]
        with pytest.raises(OSError, match="ended early"):
            fd_io.copy_range(src, dst, len(DATA) - 10, 20)
    finally:
        os.close(src)
        os.close(dst)
