"""Named Sieve scripts: `lmtpd sieve set/list/show/delete/activate`, the limit on their
number, and an index made before scripts had names."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import sqlite_utils

from lmtpd.store.index import Index, schema
from tests.conftest import Lmtpd, lmtp_send

ALICE = "alice@example.org"
JUNK = 'require "fileinto";\nif header :contains "Subject" "junk" { fileinto "Junk"; }\n'
LISTS = 'require "fileinto";\nfileinto "Lists";\n'


def script_file(lmtpd: Lmtpd, name: str, text: str) -> str:
    path = lmtpd.root / name
    path.write_text(text)
    return str(path)


def listing(lmtpd: Lmtpd, address: str = ALICE) -> list[dict[str, object]]:
    return json.loads(lmtpd.cli("sieve", "list", address, "--json").stdout)


def make_release_2_index(path: Path, script: str) -> None:
    """An index as the release before named scripts made it: schema version 2, one script
    per mailbox in `sieve_scripts (mailbox_id, script, updated)`."""
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    conn.execute("BEGIN")
    schema._first_schema(db)
    schema.STEPS[2](conn)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '2')")
    conn.execute("INSERT INTO mailboxes (id, address, domain, password_hash, quota, enabled,"
                 " created) VALUES (7, ?, 'example.org', '', 0, 1, ?)", (ALICE, time.time()))
    conn.execute("INSERT INTO sieve_scripts (mailbox_id, script, updated) VALUES (7, ?, ?)",
                 (script, 1700000000.0))
    conn.execute("COMMIT")
    conn.close()


def test_an_index_of_the_previous_release_keeps_its_script_as_the_active_main(
        tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    make_release_2_index(path, JUNK)
    index = Index(path)
    try:
        assert schema.version(index.conn) == schema.SCHEMA_VERSION
        assert index.get_sieve_script(7) == JUNK
        [row] = index.sieve_scripts(7)
        assert (row.name, row.active, row.bytes, row.updated) == ("main", True, len(JUNK),
                                                                  1700000000.0)
    finally:
        index.close()


def test_a_migrated_script_still_files_mail(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory()
    lmtpd.store_root.mkdir(parents=True)
    make_release_2_index(lmtpd.index_path, JUNK)
    assert listing(lmtpd) == [{"name": "main", "active": True, "bytes": len(JUNK)}]
    lmtpd.start()
    lmtp_send(lmtpd.socket_path, "x@example.net", [ALICE],
              b"From: x@example.net\r\nSubject: junk\r\n\r\nbuy\r\n")
    assert len(list((lmtpd.maildir(ALICE) / ".Junk" / "new").iterdir())) == 1


def test_set_list_show_activate_delete(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory()
    lmtpd.add_mailbox(ALICE)
    assert listing(lmtpd) == []
    lmtpd.cli("sieve", "set", ALICE, script_file(lmtpd, "junk.sieve", JUNK))
    lmtpd.cli("sieve", "set", ALICE, script_file(lmtpd, "lists.sieve", LISTS),
              "--name", "lists")
    # `set` activates what it stores.
    assert listing(lmtpd) == [{"name": "lists", "active": True, "bytes": len(LISTS)},
                              {"name": "main", "active": False, "bytes": len(JUNK)}]
    assert lmtpd.cli("sieve", "show", ALICE).stdout == LISTS
    assert lmtpd.cli("sieve", "show", ALICE, "main").stdout == JUNK
    lmtpd.cli("sieve", "activate", ALICE, "main")
    assert lmtpd.cli("sieve", "show", ALICE).stdout == JUNK
    lmtpd.cli("sieve", "activate", ALICE, "--none")
    assert [s["active"] for s in listing(lmtpd)] == [False, False]
    shown = lmtpd.cli("sieve", "show", ALICE, check=False)
    assert shown.returncode == 1 and "no active sieve script" in shown.stderr
    assert lmtpd.cli("sieve", "activate", ALICE, "nope", check=False).returncode == 1
    lmtpd.cli("sieve", "activate", ALICE, "lists")
    # Without NAME, delete removes the active script; the CLI may.
    lmtpd.cli("sieve", "delete", ALICE)
    assert listing(lmtpd) == [{"name": "main", "active": False, "bytes": len(JUNK)}]
    lmtpd.cli("sieve", "delete", ALICE, "main")
    assert listing(lmtpd) == []
    assert lmtpd.cli("sieve", "delete", ALICE, "main", check=False).returncode == 1


def test_max_scripts_limits_set_with_a_new_name(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory({"managesieve": {"max_scripts": 2}})
    lmtpd.add_mailbox(ALICE)
    path = script_file(lmtpd, "lists.sieve", LISTS)
    lmtpd.cli("sieve", "set", ALICE, path, "--name", "one")
    lmtpd.cli("sieve", "set", ALICE, path, "--name", "two")
    refused = lmtpd.cli("sieve", "set", ALICE, path, "--name", "three", check=False)
    assert refused.returncode == 1 and "at most 2 scripts" in refused.stderr
    # Replacing an existing script is no new script.
    lmtpd.cli("sieve", "set", ALICE, script_file(lmtpd, "junk.sieve", JUNK), "--name", "one")
    assert [s["name"] for s in listing(lmtpd)] == ["one", "two"]
    assert lmtpd.cli("sieve", "show", ALICE).stdout == JUNK


def test_bad_names_and_bad_scripts_change_nothing(lmtpd_factory) -> None:
    lmtpd = lmtpd_factory()
    lmtpd.add_mailbox(ALICE)
    lmtpd.cli("sieve", "set", ALICE, script_file(lmtpd, "junk.sieve", JUNK))
    for name in ("a/b", "", "x" * 257):
        refused = lmtpd.cli("sieve", "set", ALICE, script_file(lmtpd, "l.sieve", LISTS),
                            "--name", name, check=False)
        assert refused.returncode == 2, refused.stderr
    broken = lmtpd.cli("sieve", "set", ALICE, script_file(lmtpd, "bad.sieve", "keep\n"),
                       "--name", "bad", check=False)
    assert broken.returncode == 1 and "line 2, column 1" in broken.stderr
    assert listing(lmtpd) == [{"name": "main", "active": True, "bytes": len(JUNK)}]
