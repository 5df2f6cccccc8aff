"""`lmtpd import dovecot`: mailboxes, password hashes and Maildirs from a Dovecot passwd-file
setup, keeping every message's POP3 UIDL.

Two phases. `plan()` reads the passwd-file, finds each user's Maildir and its uidlists, and
decides what to do; it changes nothing (that is `--dry-run`). `execute()` copies or adopts the
message files, then creates the mailbox row, then reindexes it. The row comes last so an
interrupted import is simply run again: a mailbox without a row is resumed, and files whose
UIDL is already in the target folder are not placed twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lmtpd.addresses import AddressError, parse_address
from lmtpd.config import parse_size
from lmtpd.migrate import files, layout, uidlist
from lmtpd.migrate.passwd import PasswdEntry, SchemeError, read_passwd_file, stored_hash
from lmtpd.privileges import service_ids
from lmtpd.store import maildir, maintenance
from lmtpd.store.mailboxes import Store


@dataclass(frozen=True)
class Options:
    passwd_file: Path
    maildir_root: Path | None = None
    layout: str | None = None
    adopt: bool = False
    update: bool = False
    domain: str | None = None  # completes bare user names
    domain_from_user: bool = True  # False: every user goes to `domain`
    default_scheme: str = "CRYPT"
    uidl_format: str = uidlist.DEFAULT_UIDL_FORMAT


@dataclass
class MessagePlan:
    source: files.SourceMessage
    uidl: str | None  # None: no uidlist entry, the file name gives the UIDL as before
    uid: int = 0
    new_base: str | None = None  # set when the name must change to keep Dovecot's order


@dataclass
class UserPlan:
    line: int
    user: str
    address: str = ""
    action: str = "skip"  # "create", "update" or "skip"
    reason: str = ""  # why skipped; never contains a password or hash
    scheme: str = ""
    password_hash: str = field(default="", repr=False)
    quota: int = 0
    source: Path | None = None
    folders: list[files.SourceFolder] = field(default_factory=list)
    messages: list[MessagePlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: bool = False  # skipped because of a problem, not because it was there already

    @property
    def bytes(self) -> int:
        return sum(m.source.size for m in self.messages)


@dataclass
class Summary:
    mailboxes: int = 0
    updated: int = 0
    skipped: int = 0
    refused: int = 0
    messages: int = 0
    bytes: int = 0
    present: int = 0  # already in the target (an earlier or interrupted run)
    without_uidl: int = 0


def plan(store: Store, options: Options) -> list[UserPlan]:
    plans: list[UserPlan] = []
    seen: set[str] = set()
    for entry in read_passwd_file(options.passwd_file):
        user = UserPlan(entry.line, entry.user)
        plans.append(user)
        try:
            _plan_user(store, options, entry, user, seen)
        except (AddressError, SchemeError, layout.LayoutError, uidlist.UidlistError,
                OSError, ValueError) as error:
            user.action, user.reason, user.refused = "skip", str(error), True
            user.messages, user.folders = [], []
    return plans


def _plan_user(store: Store, options: Options, entry: PasswdEntry, user: UserPlan,
               seen: set[str]) -> None:
    domain = entry.domain or options.domain or ""
    if not domain:
        raise ValueError("bare user name: give --domain")
    target_domain = domain if options.domain_from_user or not options.domain else options.domain
    address = parse_address(f"{entry.local}@{target_domain}")
    user.address = str(address)
    if address.domain not in store.config.domains.local:
        raise ValueError(f"domain {address.domain} is not in domains.local")
    if user.address in seen:
        user.action, user.reason = "skip", "listed twice in the passwd-file; first one used"
        return
    seen.add(user.address)
    existing = _existing_hash(store, user.address)
    if existing is not None and not options.update:
        user.action, user.reason = "skip", "mailbox exists already (--update adds new messages)"
        return
    user.quota = _quota(entry, user)
    try:
        user.scheme, user.password_hash = stored_hash(entry.password, options.default_scheme)
    except SchemeError as error:
        if existing is None:
            raise
        # A mailbox made by hand for a user whose hash lmtpd cannot use: bring the mail only.
        user.notes.append(f"password not taken over: {error}")
    user.action = "update" if existing is not None else "create"
    if existing is not None and not existing.startswith("{"):
        # lmtpd never writes a `{SCHEME}` prefix: the user has logged in (and been rehashed)
        # or changed the password here since the first import, so that password stays.
        user.password_hash = ""
    user.source, tried = layout.locate(entry, domain, options.maildir_root, options.layout)
    if user.source is None:
        user.notes.append("no Maildir found (tried " + ", ".join(map(str, tried)) +
                          "): the mailbox starts empty")
        return
    found, refused = files.folders(user.source)
    user.folders = found
    user.notes.extend(f"folder {name} skipped: not a valid folder name" for name in refused)
    for folder in found:
        user.messages.extend(_plan_folder(folder, options, user))


def _plan_folder(folder: files.SourceFolder, options: Options,
                 user: UserPlan) -> list[MessagePlan]:
    listing = uidlist.read_uidlist(folder.path)
    entries = listing.by_base() if listing else {}
    planned = []
    missing = unstorable = 0
    for message in files.messages(folder):
        entry = entries.get(uidlist.base_name(message.name))
        uidl = None
        if entry is not None and listing is not None:
            uidl = uidlist.format_uidl(options.uidl_format, entry, listing.uidvalidity,
                                       listing.guid)
            if not files.uidl_storable(uidl):
                unstorable += 1
                uidl = None
        else:
            missing += 1
        planned.append(MessagePlan(message, uidl, entry.uid if entry else 0))
    if listing is not None:
        renamed = _keep_order(planned, listing.uidvalidity)
        if renamed:
            user.notes.append(f"{folder.folder}: {renamed} messages renamed to keep Dovecot's "
                              "order (their UIDLs are kept)")
    if missing:
        # Dovecot records every message it saves or sees; these were never seen by a client.
        user.notes.append(f"{folder.folder}: {missing} messages without a dovecot-uidlist "
                          "entry keep their file-name UIDL")
    if unstorable:
        user.notes.append(f"{folder.folder}: {unstorable} UIDLs cannot be kept (too long or "
                          "with , : / or non-ASCII); those messages get file-name UIDLs")
    return planned


def _keep_order(planned: list[MessagePlan], uidvalidity: int) -> int:
    """Dovecot lists POP3 messages by UID, lmtpd by the arrival time in the file name. They
    agree for mail Dovecot delivered; a file another program dropped in, or an IMAP copy (a
    hard link with an old name), can have a time out of UID order. Such a file gets a new base
    name with a time just after its predecessor's, so POP3 message numbers stay the same.
    Only messages with a kept UIDL (in `,U=`) are renamed: their UIDL does not depend on the
    name. Returns how many were renamed."""
    renamed = 0
    latest = float("-inf")
    for message in sorted((m for m in planned if m.uidl is not None), key=lambda m: m.uid):
        arrival = message.source.arrival
        if arrival <= latest:
            arrival = latest + 1e-6
            message.new_base = files.ordered_base(arrival, message.uid, uidvalidity)
            arrival = maildir.arrival_time(message.new_base, arrival)
            renamed += 1
        latest = arrival
    return renamed


def _quota(entry: PasswdEntry, user: UserPlan) -> int:
    """`userdb_quota_rule=*:storage=1G` from the extra fields, if any."""
    for item in entry.extra.split():
        key, _, value = item.partition("=")
        if key in ("userdb_quota_rule", "quota_rule") and value.startswith("*:storage="):
            amount = value[len("*:storage="):]
            try:
                return parse_size(amount)
            except ValueError:
                user.notes.append(f"quota rule {value!r} not understood: no quota set")
    return 0


def _existing_hash(store: Store, address: str) -> str | None:
    """The stored hash of an existing mailbox ("" without password), None if none. Does not
    create the index when there is none yet, so a dry run leaves no trace."""
    if not store.config.store.index_path.exists():
        return None
    row = store.index.get_mailbox(address)
    return None if row is None else row.password_hash


def execute(store: Store, plans: list[UserPlan], options: Options,
            progress: Callable[[int], None] | None = None,
            report: Callable[[str], None] | None = None) -> Summary:
    summary = Summary()
    owner = service_ids(store.config)
    for user in plans:
        if user.action == "skip":
            summary.skipped += 1
            summary.refused += user.refused
            continue
        try:
            placed, present, size = _import_files(store, user, options, owner, progress)
        except OSError as error:
            # No row yet, so the next run resumes this mailbox; the others go on meanwhile.
            summary.skipped += 1
            summary.refused += 1
            if report:
                report(f"failed {user.address}: {error}; run the import again to resume")
            continue
        if user.action == "create":
            _create_mailbox(store, user)
            summary.mailboxes += 1
        else:
            if user.password_hash:
                store.index.set_password(user.address, user.password_hash)
            summary.updated += 1
        maintenance.reindex(store, user.address)
        summary.messages += placed
        summary.bytes += size
        summary.present += present
        summary.without_uidl += sum(1 for m in user.messages if m.uidl is None)
    return summary


def _import_files(store: Store, user: UserPlan, options: Options,
                  owner: tuple[int, int] | None,
                  progress: Callable[[int], None] | None) -> tuple[int, int, int]:
    base = store.mailbox_dir(user.address)
    created = not base.exists()
    maildir.ensure_maildir(base, fsync=store.fsync)
    present = {(f.folder, f.uidl) for f in maildir.scan(base)}
    placed = skipped = size = 0
    touched: set[Path] = set()
    for folder in user.folders:
        target = base / folder.dirname if folder.dirname else base
        maildir.ensure_maildir(target, fsync=store.fsync, subfolder=bool(folder.dirname))
    for message in user.messages:
        folder = maildir.folder_name(message.source.dirname) if message.source.dirname \
            else maildir.INBOX
        name = files.target_name(message.source, message.uidl, message.new_base)
        key = (folder, maildir.uidl_from_filename(name))
        if key in present:
            skipped += 1
        else:
            target = base / message.source.dirname if message.source.dirname else base
            files.place(message.source, target, name, adopt=options.adopt, fsync=store.fsync,
                        owner=owner)
            present.add(key)
            touched.add(target / message.source.subdir)
            placed += 1
            size += message.source.size
        if progress:
            progress(1)
    if store.fsync:
        for directory in touched:
            files.sync_dir(directory)
    if owner is not None and (created or touched):
        files.chown_tree(base, owner)
    return placed, skipped, size


def _create_mailbox(store: Store, user: UserPlan) -> None:
    domain = user.address.rsplit("@", 1)[1]
    store.index.add_mailbox(user.address, domain, user.password_hash, user.quota)
    if store.fsync:
        files.sync_dir(store.mailbox_dir(user.address).parent)


def describe(user: UserPlan) -> str:
    """One line for the operator (and for --dry-run); names the scheme, never the hash."""
    if user.action == "skip":
        who = user.address or user.user or f"line {user.line}"
        return f"skip {who}: {user.reason}"
    folders = len(user.folders)
    password = user.scheme if user.password_hash else "password kept"
    return (f"{user.action} {user.address} ({password}) from "
            f"{user.source or 'nothing'}: {len(user.messages)} messages, {user.bytes} bytes, "
            f"{folders} folder{'s' if folders != 1 else ''}")

