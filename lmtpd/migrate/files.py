"""Scanning a Dovecot Maildir and moving its message files into lmtpd's store.

An imported file keeps its name, flags and mtime. `,U=<uidl>` is added to its name, so the
UIDL Dovecot served is what lmtpd derives from the name (`maildir.uidl_from_filename`), and
`,S=`/`,W=` (size and CRLF size) when another MDA left them out.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lmtpd.store import maildir

# Characters a UIDL stored in a file name cannot hold: `,` and `:` end the field, `/` is a
# path separator; RFC 1939 allows printable ASCII only, at most 70 of them.
_UNSAFE_IN_UIDL = set(",:/")


@dataclass(frozen=True)
class SourceMessage:
    path: Path
    dirname: str  # "" for INBOX, ".Lists.python" for a Maildir++ folder
    subdir: str  # "new" or "cur"
    size: int
    mtime: float

    @property
    def arrival(self) -> float:
        """When lmtpd will think the message arrived (it lists POP3 messages in this order)."""
        return maildir.arrival_time(self.name, self.mtime)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class SourceFolder:
    dirname: str
    path: Path

    @property
    def folder(self) -> str:
        return maildir.folder_name(self.dirname) if self.dirname else maildir.INBOX


def folders(source: Path) -> tuple[list[SourceFolder], list[str]]:
    """INBOX and the Maildir++ folders of a Dovecot Maildir; (folders, names refused)."""
    found = [SourceFolder("", source)]
    refused: list[str] = []
    for entry in sorted(os.listdir(source)):
        path = source / entry
        if not entry.startswith(".") or entry in (".", "..") or not path.is_dir():
            continue
        if not ((path / "cur").is_dir() or (path / "new").is_dir()):
            continue
        if maildir.valid_folder(maildir.folder_name(entry)):
            found.append(SourceFolder(entry, path))
        else:
            refused.append(entry)
    return found, refused


def messages(folder: SourceFolder) -> Iterator[SourceMessage]:
    """Message files in new/ and cur/ (tmp/ holds unfinished deliveries: never imported)."""
    for subdir in ("new", "cur"):
        try:
            entries = sorted(os.scandir(folder.path / subdir), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
            yield SourceMessage(Path(entry.path), folder.dirname, subdir, stat.st_size,
                                stat.st_mtime)


def uidl_storable(uidl: str) -> bool:
    return (0 < len(uidl) <= maildir.MAX_UIDL and all(0x21 <= ord(c) <= 0x7E for c in uidl)
            and not _UNSAFE_IN_UIDL & set(uidl))


def target_name(message: SourceMessage, uidl: str | None, new_base: str | None = None) -> str:
    """The source name with `,U=<uidl>` (and missing `,S=`/`,W=`) inserted before `:2,`;
    `new_base` replaces the part before the first `,` (see `reorder`)."""
    base, sep, info = message.name.partition(":")
    fields = base.split(",")[1:]
    if new_base is not None:
        base = ",".join([new_base, *fields])
    keys = {f.split("=", 1)[0] for f in fields if "=" in f}
    extra = ""
    if "S" not in keys:
        extra += f",S={message.size}"
    if "W" not in keys:
        extra += f",W={maildir.crlf_size_file(message.path)}"
    if uidl is not None and "U" not in keys:
        extra += f",U={uidl}"
    return f"{base}{extra}{sep}{info}"


def ordered_base(arrival: float, uid: int, uidvalidity: int) -> str:
    """A Dovecot-style base name that makes lmtpd see the message arrive at `arrival`."""
    secs = int(arrival)
    usecs = round((arrival - secs) * 1_000_000)
    if usecs >= 1_000_000:
        secs, usecs = secs + 1, usecs - 1_000_000
    return f"{secs}.M{usecs}P0Q{uid}V{uidvalidity}.dovecot-import"


def place(message: SourceMessage, target_dir: Path, name: str, *, adopt: bool, fsync: bool,
          owner: tuple[int, int] | None) -> None:
    """Put one message file at `target_dir/<subdir>/<name>`; never overwrites. Copy: through
    tmp/, fsynced, then linked into place. Adopt: a hard link and an unlink of the source, so
    the file is never in neither place (a copy when the store is on another file system)."""
    final = target_dir / message.subdir / name
    if adopt:
        try:
            os.link(message.path, final)
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM):
                raise
        else:
            if owner is not None:
                os.chown(final, *owner)
            os.unlink(message.path)
            return
    temporary = target_dir / "tmp" / name
    try:
        with open(message.path, "rb") as source, open(temporary, "xb") as copy:
            shutil.copyfileobj(source, copy, 1024 * 1024)
            copy.flush()
            if fsync:
                os.fsync(copy.fileno())
        shutil.copystat(message.path, temporary)
        if owner is not None:
            os.chown(temporary, *owner)
        os.link(temporary, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    if adopt:
        os.unlink(message.path)


def sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def chown_tree(path: Path, owner: tuple[int, int]) -> None:
    """Directories created for the import belong to the service user, as `serve` expects."""
    for directory, dirs, _files in os.walk(path):
        for name in [directory, *(os.path.join(directory, d) for d in dirs)]:
            os.lchown(name, *owner)
