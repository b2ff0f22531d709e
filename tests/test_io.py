"""Atomic writes: file modes follow the umask; write failures are one error naming the file."""
import errno
import os
import stat

import pytest

from seldbench.errors import SeldbenchError
from seldbench.io import atomic_open, atomic_write_text, ensure_dir


@pytest.fixture
def umask():
    """Set the process umask for one test; restored after."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077])
def test_new_files_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    path = tmp_path / "record.json"
    atomic_write_text(path, "{}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    atomic_write_text(path, "{}\n")  # replacing a file: the same
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_disk_full_while_writing_names_the_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "last.pt"
    path.write_text("old")
    with pytest.raises(SeldbenchError) as err:
        with atomic_open(path, "wb") as fh:
            fh.write(b"x")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a full disk's write does
    assert str(err.value) == f"{path}: cannot write: No space left on device"
    assert path.read_text() == "old" and not _leftovers(tmp_path)


def test_disk_full_in_torch_save_names_the_checkpoint(tmp_path, monkeypatch):
    import torch

    from seldbench.training.trainer import save_checkpoint

    class Full:  # the file object atomic_open hands out, on a full disk
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.fh.__exit__(*exc)

    real_fdopen = os.fdopen
    monkeypatch.setattr("seldbench.io.os.fdopen", lambda *a, **k: Full(real_fdopen(*a, **k)))
    path = tmp_path / "last.pt"
    with pytest.raises(SeldbenchError, match=f"^{path}: cannot write: No space left on device$"):
        save_checkpoint(path, {"w": torch.zeros(1000)})
    assert not path.exists() and not _leftovers(tmp_path)
    monkeypatch.undo()

    def torch_fails(*a, **k):  # torch's own report of a failed write, without an errno
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", torch_fails)
    with pytest.raises(SeldbenchError, match=f"^{path}: cannot write: torch.save failed "
                       r"\(\[enforce fail at inline_container.cc:672\]"):
        save_checkpoint(path, {})
    assert not path.exists() and not _leftovers(tmp_path)


def test_a_file_where_a_folder_should_be(tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    for path in (blocker / "x.json", blocker / "a" / "b" / "x.json"):
        with pytest.raises(SeldbenchError) as err:
            atomic_write_text(path, "{}")
        assert str(err.value) == f"{path}: cannot write: {blocker} is a file, not a folder"
    with pytest.raises(SeldbenchError, match=f"{blocker / 'a'}: cannot write: {blocker} is a file"):
        ensure_dir(blocker / "a")


def test_read_only_file_system_at_the_replace(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), src, None, dst)

    monkeypatch.setattr("seldbench.io.os.replace", refuse)
    path = tmp_path / "table.md"
    with pytest.raises(SeldbenchError, match=f"^{path}: cannot write: Read-only file system$"):
        atomic_write_text(path, "| a |\n")
    assert not _leftovers(tmp_path)


def test_an_oserror_about_another_file_is_not_a_write_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_open(tmp_path / "out.txt") as fh:
            fh.write((tmp_path / "missing.txt").read_text())
    assert not _leftovers(tmp_path)
