"""Run Pigeonhole's sieve-test and reduce its report to comparable action tuples."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lmtpd.sieve import (
    Discard,
    Envelope,
    FileInto,
    MessageContext,
    Redirect,
    Reject,
    SieveResult,
    Vacation,
)
from lmtpd.sieve.vacation import default_subject

# $SIEVE_TEST points at another build (or at nothing, to check the CI rule below)
SIEVE_TEST = os.environ.get("SIEVE_TEST") or shutil.which("sieve-test") or "/usr/bin/sieve-test"
# sieve-test drops privileges to mail_uid, and refuses root: run as nobody
_CONFIG = """log_path = /dev/null
info_log_path = /dev/null
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{home}/mail
plugin {{
  sieve = file:{home}/scripts
  sieve_global = {home}/global
  sieve_vacation_min_period = 1d
  sieve_vacation_max_period = 60d
  sieve_vacation_default_period = 7d
  sieve_max_actions = 32
  sieve_max_redirects = 4
}}
"""

Norm = tuple


@dataclass(frozen=True)
class Case:
    id: str
    script: str
    message: bytes
    sender: str = "sender@example.com"
    recipient: str = "user@example.org"
    user: str = "user@example.org"
    execute: bool = False  # run the actions (needed to see vacation's send/no-send rules)
    folders: tuple[str, ...] = ()  # mailboxes that exist (mailboxexists)
    oracle_script: str | None = None  # when sieve-test needs a spelling of its own
    expect_compile_error: bool = False
    # include: the mailbox's other scripts, and the global ones, as (name, text)
    personal: tuple[tuple[str, str], ...] = ()
    global_scripts: tuple[tuple[str, str], ...] = ()
    stored: bool = False  # run the actions and compare the stored copies byte for byte
    notes: str = ""
    tags: tuple[str, ...] = field(default=())


def available() -> bool:
    return os.path.exists(SIEVE_TEST) and os.access(SIEVE_TEST, os.X_OK)


def _ids() -> tuple[int, int]:
    if os.geteuid() == 0:
        return 65534, 65534  # nobody/nogroup
    return os.geteuid(), os.getegid()


def run_oracle(case: Case) -> tuple[str, Norm, str]:
    """Returns (kind, normalized actions, raw output); kind is ok, error or compile."""
    with tempfile.TemporaryDirectory(prefix="sieve-oracle-") as tmp:
        home = Path(tmp)
        os.chmod(home, 0o777)
        uid, gid = _ids()
        (home / "mail").mkdir()
        for where, scripts in (("scripts", case.personal), ("global", case.global_scripts)):
            (home / where).mkdir()
            for name, text in scripts:
                (home / where / f"{name}.sieve").write_text(text)
                os.chmod(home / where / f"{name}.sieve", 0o644)
        for folder in case.folders:
            for sub in ("cur", "new", "tmp"):
                (home / "mail" / f".{folder}" / sub).mkdir(parents=True, exist_ok=True)
        for dirpath, _dirs, _files in os.walk(home):
            os.chmod(dirpath, 0o777)
        conf = home / "dovecot.conf"
        conf.write_text(_CONFIG.format(uid=uid, gid=gid, home=home))
        script = home / "test.sieve"
        script.write_text(case.oracle_script or case.script)
        msg = home / "message.eml"
        msg.write_bytes(case.message)
        for p in (conf, script, msg):
            os.chmod(p, 0o644)
        cmd = [SIEVE_TEST, "-c", str(conf), "-x", "+editheader"]
        cmd += ["-f", case.sender, "-a", case.recipient, "-r", case.user]
        if case.execute or case.stored:
            cmd.append("-e")
        cmd += [str(script), str(msg)]
        env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(cmd, capture_output=True, env=env, timeout=30, check=False)
        copies = _stored_copies(home / "mail") if case.stored else ()
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    text = out + "\n--stderr--\n" + err
    if "failed to compile sieve script" in err:
        return "compile", (), text
    if "final result: failed" in err or proc.returncode != 0:
        return "error", (("store", "INBOX", frozenset()),), text
    if case.stored:
        return "ok", ("stored", copies), text
    if case.execute:
        return "ok", _parse_executed(out + err), text
    return "ok", _parse_listing(out), text


def _stored_copies(maildir: Path) -> Norm:
    """(folder, message) for every message sieve-test stored, sorted."""
    found = []
    for path in maildir.glob("**/new/*"):
        folder = path.parent.parent.name.lstrip(".") if path.parent.parent != maildir else "INBOX"
        found.append((folder, path.read_bytes()))
    return tuple(sorted(found))


_STORE = re.compile(r"^ \* store message in folder: (.*)$")
_TRACK = re.compile(r"^ \* track( last)? duplicate(?: with handle: (.*))?$")
_FLAGS = re.compile(r"^\s+\+ add IMAP flags: (.*)$")


def _parse_listing(out: str) -> Norm:
    """The 'Performed actions' and 'Implicit keep' sections of a dry run."""
    performed: list[list[object]] = []
    keep: list[list[object]] = []
    marks: list[tuple[object, ...]] = []
    section: list[list[object]] | None = None
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("Performed actions:"):
            section = performed
        elif line.startswith("Implicit keep:"):
            section = keep
        elif line.startswith("START MESSAGE"):
            while i < len(lines) and not lines[i].startswith("END MESSAGE"):
                i += 1
        elif section is not None and (m := _STORE.match(line)):
            section.append(["store", m.group(1), frozenset()])
        elif section is not None and (m := _FLAGS.match(line)) and section:
            section[-1][2] = frozenset(f.lower() for f in m.group(1).split())
        elif section is not None and line.startswith(" * discard"):
            section.append(["discard"])
        elif section is not None and line.startswith(" * reject message with reason: "):
            section.append(["reject", line.split(": ", 1)[1]])
        elif section is not None and line.startswith(" * redirect message to: "):
            section.append(["redirect", line.split(": ", 1)[1].strip().strip("<>")])
        elif section is not None and (m := _TRACK.match(line)):
            marks.append(("track", m.group(2), bool(m.group(1))))
        elif section is not None and line.startswith(" * send vacation message"):
            section.append(["vacation", None, None])
        elif section is not None and section and section[-1][0] == "vacation":
            if m := re.match(r"\s+=> seconds : (\d+)", line):
                section[-1][2] = int(m.group(1))
            elif m := re.match(r"\s+=> subject : (.*)$", line):
                section[-1][1] = m.group(1)
        i += 1
    actions = [tuple(a) for a in performed]
    has_inbox = any(a[0] == "store" and str(a[1]).upper() == "INBOX" for a in actions)
    if not has_inbox:
        actions += [tuple(a) for a in keep]
    if marks:
        actions.append(("marks", tuple(sorted(marks, key=repr))))
    return tuple(actions)


def _parse_executed(out: str) -> Norm:
    """With -e: which folders got the message and whether a vacation reply went out."""
    stores = sorted(set(re.findall(r"stored mail into mailbox '([^']*)'", out)))
    sent = "sent vacation response to" in out
    return ("executed", tuple(stores), sent)


def normalize_ours(case: Case, result: SieveResult, msg: MessageContext) -> tuple[str, Norm]:
    if result.errors:
        return "error", (("store", "INBOX", frozenset()),)
    if case.stored:
        # stored as lmtpd and Dovecot store a message: with LF line ends
        copies = [(a.folder, (a.message or msg.raw).replace(b"\r\n", b"\n"))
                  for a in result.actions if isinstance(a, FileInto)]
        return "ok", ("stored", tuple(sorted(copies)))
    if case.execute:
        stores = sorted({a.folder for a in result.actions if isinstance(a, FileInto)})
        sent = any(isinstance(a, Vacation) for a in result.actions)
        return "ok", ("executed", tuple(stores), sent)
    out: list[tuple[object, ...]] = []
    for a in result.actions:
        if isinstance(a, FileInto):
            folder = re.sub(r"[\x00-\x1f]", "?", a.folder)  # printed as sieve-test prints it
            out.append(("store", folder, frozenset(f.lower() for f in a.flags)))
        elif isinstance(a, Discard):
            out.append(("discard",))
        elif isinstance(a, Reject):
            # sieve-test prints control characters (the CRLF of text: reasons) as '?'
            out.append(("reject", re.sub(r"[\x00-\x1f]", "?", a.reason)))
        elif isinstance(a, Redirect):
            out.append(("redirect", a.address))
        elif isinstance(a, Vacation):
            subject = None if a.subject == default_subject(msg) else a.subject
            out.append(("vacation", subject, a.seconds))
    if result.duplicate_marks:
        marks = [("track", m.handle, m.last) for m in result.duplicate_marks]
        out.append(("marks", tuple(sorted(marks, key=repr))))
    return "ok", tuple(out)


@dataclass(frozen=True)
class CaseScripts:
    """The ScriptLoader of a case: its personal and global scripts."""

    case: Case

    def personal(self, name: str) -> str | None:
        return dict(self.case.personal).get(name)

    def global_(self, name: str) -> str | None:
        return dict(self.case.global_scripts).get(name)


# what sieve-test reports for host and domain: this machine's name
ENVIRONMENT = {"host": socket.gethostname(), "domain": socket.gethostname().partition(".")[2]
               or socket.gethostname()}


def envelope_of(case: Case) -> Envelope:
    return Envelope(sender=case.sender, recipient=case.recipient, user_address=case.user)
