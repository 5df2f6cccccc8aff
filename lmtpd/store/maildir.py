"""Maildir on disk: durable writes, folder names, flags, file names, UIDLs.

The only module that creates, renames, reads or removes message files. Blocking: callers on
the event loop run these functions in worker threads.

File names are Dovecot's: `<secs>.M<usecs>P<pid>Q<seq>.<host>,S=<size>,W=<crlf size>` with
`:2,<flags>` in `cur/`. The POP3 UIDL is derived from the name alone (the base before the first
`,` or `:`, or an explicit `,U=<uidl>` field), so it survives a lost index and `lmtpd reindex`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import os
import re
import shutil
import socket
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from lmtpd import faults
from lmtpd.addresses import Address

SUBDIRS = ("cur", "new", "tmp")
INBOX = "INBOX"
# Maildir info flags in the order Maildir requires (ASCII order), and their IMAP names.
FLAG_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "$Forwarded": "P", "\\Answered": "R",
                "\\Seen": "S", "\\Deleted": "T"}
LETTER_FLAGS = {v: k for k, v in FLAG_LETTERS.items()}
MAX_UIDL = 70
_COPY_CHUNK = 1024 * 1024
_SEQUENCE = itertools.count(1)
_FOLDER_PART = re.compile(r"^[^\x00-\x1f\x7f/\\.][^\x00-\x1f\x7f/\\]*$")


class FolderError(ValueError):
    """A folder name that cannot be mapped to a Maildir++ subfolder safely."""


class Body(Protocol):
    """A message body held in memory or spooled to a file (see lmtpd.spool)."""

    size: int

    def chunks(self) -> Iterator[bytes]: ...

    def fileno(self) -> int | None: ...

    def crlf_size(self) -> int: ...


@dataclass(frozen=True)
class StoredFile:
    folder: str
    subdir: str
    filename: str
    uidl: str
    size: int
    crlf_size: int
    received: float
    flags: str

    @property
    def relpath(self) -> str:
        return f"{self.subdir}/{self.filename}"


def mailbox_dir(mail_root: Path, address: Address) -> Path:
    """`<root>/mail/<domain>/<local>`; the address was validated by lmtpd.addresses."""
    path = mail_root / address.domain / address.local
    if path.parent.parent != mail_root or address.local in {".", ".."}:
        raise ValueError(f"address {address} does not map inside the store")
    return path


def folder_dir(mailbox: Path, folder: str) -> Path:
    """`INBOX` is the mailbox itself; `Lists/python` is the Maildir++ folder `.Lists.python`."""
    return mailbox / folder_dirname(folder) if not is_inbox(folder) else mailbox


def is_inbox(folder: str) -> bool:
    return folder.upper() == INBOX


def normal_folder(folder: str) -> str:
    """The name a folder is kept under: INBOX in any case is INBOX."""
    return INBOX if is_inbox(folder) else folder


def folder_dirname(folder: str) -> str:
    parts = folder.split("/")
    for part in parts:
        if not part or not _FOLDER_PART.match(part) or part in {"..", "."}:
            raise FolderError(f"invalid folder name {folder!r}")
    if len(folder.encode()) > 200:
        raise FolderError(f"folder name too long: {folder!r}")
    return "." + ".".join(parts)


def valid_folder(folder: str) -> bool:
    try:
        folder_dirname(folder)
    except FolderError:
        return False
    return True


def folder_name(dirname: str) -> str:
    """`.Lists.python` -> `Lists/python`."""
    return dirname[1:].replace(".", "/")


def list_folders(mailbox: Path) -> list[str]:
    folders = [INBOX]
    try:
        entries = sorted(os.listdir(mailbox))
    except FileNotFoundError:
        return folders
    for entry in entries:
        if entry.startswith(".") and entry != ".." and (mailbox / entry / "cur").is_dir():
            folders.append(folder_name(entry))
    return folders


def _real_dir(path: str | Path) -> bool:
    """Whether `path` is a directory itself, not a symbolic link to one (False: missing)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(mode):
        return True
    raise OSError(errno.ELOOP if stat.S_ISLNK(mode) else errno.ENOTDIR,
                  "not a directory of the store (a symbolic link?)", str(path))


def check_no_links(top: Path, path: Path) -> None:
    """Refuse a directory below `top` on the way to `path` (which lies below it) that is a
    symbolic link: mail must never be written, read or locked through a link planted in the
    store. On every delivery, so strings and lstat() only."""
    current = os.fspath(top)
    for part in os.fspath(path)[len(current):].split("/"):
        if part:
            current = f"{current}/{part}"
            _real_dir(current)


def ensure_maildir(path: Path, *, fsync: bool, subfolder: bool = False) -> None:
    """Create `cur/ new/ tmp/` (and the Maildir++ `maildirfolder` marker) if missing. A
    symbolic link where one of them (or the folder) should be raises OSError."""
    text = os.fspath(path)
    if _real_dir(f"{text}/tmp") and _real_dir(f"{text}/new") and _real_dir(f"{text}/cur"):
        return
    created = not _real_dir(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for sub in SUBDIRS:
        (path / sub).mkdir(exist_ok=True, mode=0o700)
        _real_dir(path / sub)
    if subfolder:
        (path / "maildirfolder").touch(exist_ok=True)
    if fsync:
        _fsync_dir(path)
        if created:
            _fsync_dir(path.parent)


def _host_part() -> str:
    # Dovecot escapes '/' and ':' in the host part; ',' separates our fields, so escape it too.
    host = socket.gethostname() or "localhost"
    return host.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


_HOST = _host_part()


def new_basename(now: float | None = None) -> str:
    moment = time.time() if now is None else now
    secs = int(moment)
    usecs = int((moment - secs) * 1_000_000)
    return f"{secs}.M{usecs}P{os.getpid()}Q{next(_SEQUENCE)}.{_HOST}"


def flags_to_info(flags: Iterable[str]) -> str:
    letters = {FLAG_LETTERS[f] for f in flags if f in FLAG_LETTERS}
    return "".join(sorted(letters))


def info_to_flags(info: str) -> list[str]:
    return [LETTER_FLAGS[c] for c in info if c in LETTER_FLAGS]


def uidl_from_filename(filename: str) -> str:
    """The POP3 UIDL of a message file, from its name only."""
    base = filename.split(":", 1)[0]
    fields = base.split(",")
    for extra in fields[1:]:
        if extra.startswith("U="):
            return extra[2:]
    uidl = fields[0]
    if len(uidl) > MAX_UIDL or any(not 0x21 <= ord(c) <= 0x7E for c in uidl):
        uidl = hashlib.sha1(uidl.encode("utf-8", "surrogateescape")).hexdigest()
    return uidl


def sizes_from_filename(filename: str) -> tuple[int | None, int | None]:
    size = crlf = None
    for extra in filename.split(":", 1)[0].split(",")[1:]:
        if extra.startswith("S=") and extra[2:].isdigit():
            size = int(extra[2:])
        elif extra.startswith("W=") and extra[2:].isdigit():
            crlf = int(extra[2:])
    return size, crlf


def crlf_size_of(data: bytes) -> int:
    """Octets RETR sends for the message `data`: every LF not already preceded by CR becomes
    CRLF, and a message that does not end in a line end gets one (RFC 1939 §3: the
    terminating dot starts a line)."""
    return _crlf_octets(data) + missing_line_end(data[-1:])


def _crlf_octets(data: bytes) -> int:
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def missing_line_end(last_octet: bytes) -> int:
    """What RETR adds after a message whose last octet is `last_octet` (b"" when empty): a
    CRLF, the LF of a final CR, or nothing after a final LF."""
    if not last_octet or last_octet == b"\n":
        return 0
    return 1 if last_octet == b"\r" else 2


def write_message(
    target: Path,
    prefix: bytes,
    body: Body,
    *,
    flags: Iterable[str] = (),
    fsync: bool = True,
    extra_fields: str = "",
) -> StoredFile:
    """Write `prefix + body` durably into the Maildir `target`: tmp/, write, fsync, rename into
    new/ (or cur/ with flags), fsync the directory. On any error nothing stays behind."""
    info = flags_to_info(flags)
    received = time.time()
    base = new_basename(received)
    size = len(prefix) + body.size
    crlf = crlf_size_of(prefix) + body.crlf_size()
    name = f"{base},S={size},W={crlf}{extra_fields}"
    tmp_path = target / "tmp" / name
    subdir = "cur" if info else "new"
    final_name = f"{name}:2,{info}" if info else name
    final_path = target / subdir / final_name
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            _write_all(fd, prefix, body)
            if fsync:
                _fsync(fd)
        finally:
            os.close(fd)
        # link() refuses to overwrite, so a name collision can never replace another message.
        os.link(tmp_path, final_path)
    except BaseException:
        _unlink_quietly(tmp_path)
        raise
    _unlink_quietly(tmp_path)
    try:
        if fsync:
            _DIR_SYNC.sync(target / subdir)
    except BaseException:
        _unlink_quietly(final_path)
        raise
    return StoredFile(
        folder="", subdir=subdir, filename=final_name, uidl=uidl_from_filename(final_name),
        size=size, crlf_size=crlf, received=received, flags=info,
    )


class _DirSync:
    """Group commit for the directory fsync that makes a new message's name durable.

    Concurrent deliveries into one folder each need an fsync of `new/` that starts after their
    link(). One fsync covers every link made before it started, so a delivery that finds one
    running waits for it, and the next one then covers all who arrived meanwhile: under load,
    one directory fsync per batch instead of one per message. Nobody returns before an fsync
    that started after its own link() has succeeded; after a failed one, each waiter tries
    itself, so an error reaches everyone it concerns."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._dirs: dict[Path, _DirState] = {}

    def sync(self, path: Path) -> None:
        with self._cond:
            state = self._dirs.get(path)
            if state is None:
                state = self._dirs[path] = _DirState()
            state.requested += 1
            ticket = state.requested
            state.users += 1
            while state.running and state.done < ticket:
                self._cond.wait()
            if state.done >= ticket:
                self._release(path, state)
                return
            state.running = True
            covers = state.requested
        error: BaseException | None = None
        try:
            _fsync_dir(path)
        except BaseException as failure:
            error = failure
        with self._cond:
            state.running = False
            if error is None:
                state.done = max(state.done, covers)
            self._release(path, state)
            self._cond.notify_all()
        if error is not None:
            raise error

    def _release(self, path: Path, state: _DirState) -> None:
        state.users -= 1
        if not state.users and not state.running:
            del self._dirs[path]


@dataclass
class _DirState:
    requested: int = 0  # tickets handed out (one per link() waiting for durability)
    done: int = 0  # every ticket up to this one is covered by a successful fsync
    running: bool = False
    users: int = 0


_DIR_SYNC = _DirSync()


def _write_all(fd: int, prefix: bytes, body: Body) -> None:
    source = body.fileno()
    if source is None:
        chunks = [prefix, *body.chunks()]
        _writev_all(fd, chunks)
        return
    _writev_all(fd, [prefix])
    offset = 0
    while offset < body.size:
        sent = os.sendfile(fd, source, offset, min(_COPY_CHUNK * 8, body.size - offset))
        if sent == 0:
            raise OSError(errno.EIO, "short read from spool")
        offset += sent


def _writev_all(fd: int, chunks: list[bytes]) -> None:
    faults.check("write")
    views = [memoryview(c) for c in chunks if c]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _fsync(fd: int) -> None:
    faults.check("fsync")
    os.fsync(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _message_entries(mailbox: Path) -> Iterator[tuple[str, str, os.DirEntry[str]]]:
    """(folder, subdir, entry) of every message file of every folder of a mailbox."""
    for folder in list_folders(mailbox):
        directory = folder_dir(mailbox, folder)
        for subdir in ("new", "cur"):
            try:
                entries = os.scandir(directory / subdir)
            except FileNotFoundError:
                continue
            with entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                        continue
                    yield folder, subdir, entry


def scan(mailbox: Path) -> Iterator[StoredFile]:
    """Every message file of every folder of a mailbox (for reindex and verify)."""
    for folder, subdir, entry in _message_entries(mailbox):
        yield describe(folder, subdir, entry.name, entry.path)


def count_messages(mailbox: Path) -> int:
    """How many message files a mailbox holds, from the directory listings alone (no stat or
    read per file, unlike `scan`): the length of reindex's progress bar."""
    return sum(1 for _ in _message_entries(mailbox))


def describe(folder: str, subdir: str, name: str, path: str) -> StoredFile:
    found = os.lstat(path)
    size, crlf = sizes_from_filename(name)
    if size != found.st_size or crlf is None:
        # A name without sizes (another MDA's) or with a wrong S=: measure the file.
        size = found.st_size
        crlf = crlf_size_file(path)
    info = name.split(":2,", 1)[1] if ":2," in name else ""
    received = arrival_time(name, found.st_mtime)
    return StoredFile(folder, subdir, name, uidl_from_filename(name), size, crlf, received, info)


_ARRIVAL = re.compile(r"^(\d+)\.M(\d{1,6})P")


def arrival_time(filename: str, fallback: float) -> float:
    """When a message arrived, to the microsecond, from a `<secs>.M<usecs>P...` file name
    (`fallback` for names of another form). It survives a reindex, so POP3 can list messages
    in the same order before and after one."""
    match = _ARRIVAL.match(filename)
    if not match:
        return fallback
    return int(match.group(1)) + int(match.group(2)) / 1_000_000


def crlf_size_file(path: str | Path) -> int:
    """crlf_size_of a message file, read a chunk at a time."""
    total = 0
    last = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(_COPY_CHUNK):
            total += _crlf_octets(chunk)
            if last == b"\r" and chunk.startswith(b"\n"):
                total -= 1
            last = chunk[-1:]
    return total + missing_line_end(last)


def message_path(mailbox: Path, folder: str, subdir: str, filename: str) -> Path:
    if "/" in filename or filename.startswith(".") or subdir not in ("new", "cur"):
        raise ValueError(f"invalid message file name {filename!r}")
    return folder_dir(mailbox, folder) / subdir / filename


def open_message(path: Path) -> BinaryIO:
    """A message file for reading; a symbolic link is refused (OSError, ELOOP)."""
    return os.fdopen(os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW), "rb")


POP3_LOCK = "lmtpd-pop3.lock"


def lock_mailbox(mailbox: Path) -> int | None:
    """An exclusive, non-blocking lock on a mailbox for one POP3 session, across every
    process: a descriptor to pass to `unlock_mailbox`, or None when another session holds it.
    The kernel drops the lock if the process dies, so a crash never leaves a mailbox locked."""
    fd = os.open(mailbox / POP3_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def unlock_mailbox(fd: int) -> None:
    os.close(fd)


def read_chunks(path: Path, chunk_size: int = _COPY_CHUNK) -> Iterator[bytes]:
    """The raw bytes of a message file, `chunk_size` at a time, so a server can stream a large
    message without holding it in memory. The file is opened at the first `next()` (so a
    missing file raises there, before anything was sent) and closed when the generator is
    exhausted or closed."""
    with open_message(path) as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def mark_seen(mailbox: Path, folder: str, subdir: str, filename: str, *, fsync: bool) -> str:
    """Move a message into cur/ with the S flag (an IMAP server then shows it as read).
    Returns the new file name; the UIDL is unchanged because the base name is kept."""
    base, _, info = filename.partition(":2,")
    letters = set(info) | {"S"}
    new_name = f"{base}:2,{''.join(sorted(letters))}"
    if subdir == "cur" and new_name == filename:
        return filename
    directory = folder_dir(mailbox, folder)
    os.rename(directory / subdir / filename, directory / "cur" / new_name)
    if fsync:
        _fsync_dir(directory / "cur")
        if subdir != "cur":
            _fsync_dir(directory / subdir)
    return new_name


def remove_messages(paths: Iterable[Path], *, fsync: bool) -> list[Path]:
    """Unlink message files; returns the ones that failed. Directories are fsynced once each."""
    failed: list[Path] = []
    dirs: set[Path] = set()
    for path in paths:
        try:
            os.unlink(path)
            dirs.add(path.parent)
        except FileNotFoundError:
            dirs.add(path.parent)
        except OSError:
            failed.append(path)
    if fsync:
        for directory in dirs:
            _fsync_dir(directory)
    return failed


def remove_mailbox_tree(mailbox: Path) -> None:
    shutil.rmtree(mailbox, ignore_errors=False)
