"""Files in a folder that learner code can write, touched from outside the sandbox.

Learner code may swap any file or folder it can write for a link to a file of the host,
at any moment. So everything the grader reads, writes or removes there goes through
here: a path is given with the folder it must lie under (the ``root``, a folder learner
code cannot replace: the sandbox binds it), and is reached from that folder without
following a single link (``openat2`` with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS``, or,
on kernels without it, one ``O_NOFOLLOW`` step at a time). What is read must be a regular
file, and no larger than the caller allows.

Every failure is an ``OSError`` (ELOOP for a link, EXDEV for a path outside the root,
EFBIG for a file too large, EINVAL for something that is not a regular file).
"""
from __future__ import annotations

import ctypes
import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO, Iterator

SYS_OPENAT2 = 437  # the same number on every architecture Linux added it to
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def _openat2(dir_fd: int, relative: str, flags: int, mode: int) -> int:
    how = _OpenHow(flags, mode if flags & os.O_CREAT else 0, RESOLVE)
    fd = _syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(os.fsencode(relative)),
                  ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), relative)
    return fd


def _step_by_step(dir_fd: int, parts: list[str], flags: int, mode: int) -> int:
    """What openat2 does, for kernels before 5.6: each folder opened without following."""
    opened: list[int] = []
    try:
        for part in parts[:-1]:
            dir_fd = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            opened.append(dir_fd)
        return os.open(parts[-1], flags | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
    finally:
        for fd in opened:
            os.close(fd)


def _relative(root: Path, path: Path | str) -> list[str]:
    path = Path(path)
    try:
        relative = path.relative_to(root) if path.is_absolute() else path
    except ValueError:
        raise OSError(errno.EXDEV, "not a path below the folder", str(path)) from None
    parts = [p for p in relative.parts if p not in ("", ".")]
    if ".." in parts or not parts:
        raise OSError(errno.EXDEV, "not a path below the folder", str(path))
    return parts


def open_beneath(root: Path, path: Path | str, flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """A file descriptor for ``path`` (absolute, or relative to ``root``), reached from
    ``root`` without following any link. ``root`` itself must not be a link either."""
    parts = _relative(Path(root), path)
    flags |= os.O_CLOEXEC
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            return _openat2(root_fd, "/".join(parts), flags, mode)
        except OSError as error:
            if error.errno not in (errno.ENOSYS, errno.EPERM):  # EPERM: a seccomp filter refusing it
                raise
            return _step_by_step(root_fd, parts, flags, mode)
    finally:
        os.close(root_fd)


def _regular(fd: int, path, limit: int | None) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    if limit is not None and info.st_size > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return info


def open_regular(root: Path, path: Path | str, limit: int | None = None) -> BinaryIO:
    """A regular file below ``root``, open for reading (at most ``limit`` bytes large)."""
    fd = open_beneath(root, path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block us
    try:
        _regular(fd, path, limit)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(root: Path, path: Path | str, limit: int) -> bytes:
    with open_regular(root, path, limit) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew while we read it
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return data


def tail(root: Path, path: Path | str, size: int) -> tuple[bytes, int]:
    """The last ``size`` bytes of a regular file below ``root``, and its whole length."""
    with open_regular(root, path) as handle:
        length = os.fstat(handle.fileno()).st_size
        handle.seek(max(0, length - size))
        return handle.read(size), length


def is_regular(root: Path, path: Path | str) -> bool:
    try:
        with open_regular(root, path):
            return True
    except OSError:
        return False


def size(root: Path, path: Path | str) -> int | None:
    """The length of a regular file below ``root``; None when there is none."""
    try:
        with open_regular(root, path) as handle:
            return os.fstat(handle.fileno()).st_size
    except OSError:
        return None


def write_new(root: Path, path: Path | str, data: bytes) -> None:
    """Create a file that must not exist yet (a name learner code planted first fails)."""
    fd = open_beneath(root, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def open_folder(root: Path, path: Path | str | None = None) -> int:
    """An O_PATH descriptor of a folder below ``root`` (or of ``root``), for the *at calls."""
    if path is None or Path(path) == Path(root):
        return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return open_beneath(root, path, os.O_PATH | os.O_DIRECTORY)


def remove(folder_fd: int, name: str) -> bool:
    """Remove an entry of a folder (held open), a whole tree if it is a folder, at any
    depth; links are removed, never followed. Never raises: True when it is gone."""
    try:
        return _remove_entry(folder_fd, name)
    except OSError:
        return False


def remove_tree(path: Path | str) -> bool:
    """Remove ``path`` and all below it: a tree learner code or a submission may have
    filled (thousands of levels deep, links anywhere, folders it made unreadable). The
    folders leading to ``path`` are the grader's; from ``path`` on no link is followed.
    Never raises (one learner's leftovers must not end a host or a batch): True when
    nothing is left. ``shutil.rmtree`` recurses, and a deep tree ends it in a
    RecursionError, which ``ignore_errors`` does not catch."""
    path = Path(path)
    try:
        parent = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return not os.path.lexists(path)
    try:
        return remove(parent, path.name)
    finally:
        os.close(parent)


_TREE_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _remove_entry(parent: int, name: str) -> bool:
    """Depth-first with one folder open at a time: down by name (never through a link),
    back up through "..", checked to be the folder we came from. The names still to visit
    are kept per level, so a wide folder is listed once. What cannot be removed (or was
    removed meanwhile by a process still dying) is passed over; the rest still goes."""
    here = _open_tree_folder(parent, name)
    if here is None:
        return True  # gone, or a file or link: removed
    levels = [[name, os.fstat(here), None]]  # per level: its name in its parent, its stat, subfolders left
    complete = True
    try:
        while levels:
            level = levels[-1]
            if level[2] is None:
                level[2], emptied = _empty_of_files(here)
                complete &= emptied
            if level[2]:
                name = level[2].pop()
                try:
                    child = _open_tree_folder(here, name)
                except OSError:
                    complete = False
                    continue
                if child is not None:
                    os.close(here)
                    here = child
                    levels.append([name, os.fstat(child), None])
                continue
            levels.pop()
            up = os.open("..", _TREE_FOLDER, dir_fd=here) if levels else parent
            if levels and not os.path.samestat(os.fstat(up), levels[-1][1]):
                os.close(up)
                return False  # the tree was moved while it was being removed: stop there
            os.close(here)
            here = up
            try:
                os.rmdir(level[0], dir_fd=here)
            except FileNotFoundError:
                pass
            except OSError:
                complete = False
        return complete
    finally:
        if here != parent:
            os.close(here)


def _open_tree_folder(parent: int, name: str) -> int | None:
    """A folder of the tree, opened for listing; None when ``name`` was not a folder (then
    it is unlinked) or is gone. A folder learner code made unreadable is made readable."""
    for attempt in range(2):
        try:
            return os.open(name, _TREE_FOLDER, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno in (errno.ENOTDIR, errno.ELOOP):
                _unlink(parent, name)
                return None
            if error.errno != errno.EACCES or attempt:
                raise
            _make_ours(parent, name)
    return None


def _make_ours(parent: int, name: str) -> None:
    """rwx for the owner on a folder (through a descriptor of it: no link followed)."""
    handle = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent)
    try:
        os.chmod(f"/proc/self/fd/{handle}", 0o700)
    finally:
        os.close(handle)


def _empty_of_files(folder: int) -> tuple[list[str], bool]:
    """Unlink everything in ``folder`` that is not a folder: (its subfolders' names, whether
    every other entry went)."""
    folders, emptied = [], True
    with os.scandir(folder) as listing:
        for entry in listing:
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                else:
                    _unlink(folder, entry.name)
            except OSError:
                emptied = False
    return folders, emptied


def _unlink(folder: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except FileNotFoundError:
        pass


def entries(root: Path, path: Path | str | None = None, files_only: bool = False) -> Iterator[str]:
    """Every file and folder below a folder under ``root`` (or only what is not a folder),
    as paths relative to that folder; links are listed, never followed."""
    fd = open_folder(root, path)
    try:
        for folder, folders, names, _ in os.fwalk(".", dir_fd=fd):
            for name in names if files_only else folders + names:
                yield os.path.normpath(os.path.join(folder, name))
    finally:
        os.close(fd)


def share_like_parent(folder: Path) -> None:
    """A folder the grader made inside a folder it shares with learner code of another
    user: give it the parent's mode (group-writable, sticky), so learner code can add
    files in it but never remove or rename the grader's. Elsewhere nothing changes."""
    parent = os.lstat(folder.parent)
    if parent.st_mode & stat.S_ISVTX:
        os.chmod(folder, stat.S_IMODE(parent.st_mode))


def make_shared_folder(folder: Path) -> Path:
    folder.mkdir()
    share_like_parent(folder)
    return folder
