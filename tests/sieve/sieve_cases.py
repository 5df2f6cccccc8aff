"""Differential cases: each one runs in sieve-test and in our engine, and both must agree."""

from __future__ import annotations

from sieve_messages import MESSAGES
from sieve_oracle import Case

CASES: list[Case] = []

ALL_EXT = (
    'require ["fileinto", "reject", "envelope", "subaddress", "imap4flags", "copy", '
    '"mailbox", "body", "variables", "vacation"];\n'
)


def c(case_id: str, script: str, msg: str = "plain", *, full: bool = True, **kw: object) -> None:
    """Add a case; ``full`` prepends a require of every extension."""
    text = (ALL_EXT + script) if full else script
    oracle = kw.pop("oracle_script", None)
    if isinstance(oracle, str) and full:
        oracle = ALL_EXT + oracle
    CASES.append(Case(case_id, text, MESSAGES[msg], oracle_script=oracle, **kw))  # type: ignore[arg-type]


# --- control, keep, discard, stop ----------------------------------------------------
c("empty-script", "", full=False)
c("comment-only", "# nothing\n/* still nothing */\n", full=False)
c("keep", "keep;", full=False)
c("discard", "discard;", full=False)
c("discard-then-keep", "discard; keep;", full=False)
c("stop-before-discard", "stop; discard;", full=False)
c("if-true", "if true { discard; }", full=False)
c("if-false", "if false { discard; }", full=False)
c("if-else", 'if false { discard; } else { fileinto "Else"; }')
c("elsif-chain", 'if false { fileinto "A"; } elsif true { fileinto "B"; } else { fileinto "C"; }')
c("elsif-first-wins", 'if true { fileinto "A"; } elsif true { fileinto "B"; }')
c("elsif-none", 'if false { fileinto "A"; } elsif false { fileinto "B"; }')
c("nested-15", "if true {" * 15 + 'fileinto "Deep";' + "}" * 15)
c("stop-in-block", 'if true { fileinto "A"; stop; } fileinto "B";')
c("not-true", "if not true { discard; }", full=False)
c("allof-mixed", "if allof (true, false) { discard; }", full=False)
c("allof-true", "if allof (true, true, true) { discard; }", full=False)
c("anyof-mixed", "if anyof (false, true) { discard; }", full=False)
c("anyof-false", "if anyof (false, false) { discard; }", full=False)
c("not-anyof", 'if not anyof (false, header :is "x-none" "") { discard; }', full=False)

# --- fileinto, keep, :copy, :create, duplicates --------------------------------------------
c("fileinto", 'fileinto "Lists";')
c("fileinto-nested-name", 'fileinto "Lists/python";')
c("fileinto-twice", 'fileinto "A"; fileinto "A";')
c("fileinto-two", 'fileinto "A"; fileinto "B";')
c("fileinto-inbox", 'fileinto "INBOX";')
c("fileinto-inbox-and-keep", 'fileinto "INBOX"; keep;')
c("keep-and-fileinto", 'keep; fileinto "A";')
c("fileinto-copy", 'fileinto :copy "A";')
c("fileinto-copy-inbox", 'fileinto :copy "INBOX";')
c("fileinto-create", 'fileinto :create "New";')
c("fileinto-create-copy", 'fileinto :create :copy "New";')
c("fileinto-then-discard", 'fileinto "A"; discard;')
c("discard-then-fileinto", 'discard; fileinto "A";')
c("fileinto-utf8", 'fileinto "Bücher";')
c("fileinto-stop-keep", 'fileinto "A"; stop; keep;')

# --- redirect -------------------------------------------------------------------------
c("redirect", 'redirect "other@example.net";', full=False)
c("redirect-copy", 'redirect :copy "other@example.net";')
c("redirect-twice-same", 'redirect "other@example.net"; redirect "other@example.net";', full=False)
c("redirect-two", 'redirect "a@example.net"; redirect "b@example.net";', full=False)
c(
    "redirect-four",
    "".join(f'redirect "r{i}@example.net";' for i in range(4)),
    full=False,
)
c(
    "redirect-five-limit",
    "".join(f'redirect "r{i}@example.net";' for i in range(5)),
    full=False,
)
c("redirect-and-keep", 'redirect "a@example.net"; keep;', full=False)
c("redirect-and-fileinto", 'redirect "a@example.net"; fileinto "A";')
c("redirect-invalid", 'redirect "not an address";', full=False, expect_compile_error=True)

# --- reject ---------------------------------------------------------------------------
c("reject", 'reject "Go away";')
c("reject-after-discard", 'discard; reject "no";')
c("reject-after-fileinto", 'fileinto "A"; reject "no";')
c("reject-after-keep", 'keep; reject "no";')
c("reject-after-redirect", 'redirect "a@example.net"; reject "no";')
c("reject-twice", 'reject "no"; reject "again";')
c("reject-then-fileinto", 'reject "no"; fileinto "A";')
c("reject-multiline", "reject text:\nNot here.\n.\n;")
c("reject-vacation-conflict", 'vacation "away"; reject "no";')
# ereject is not enabled in this sieve-test build; reject behaves the same for actions
c(
    "ereject",
    'require "ereject"; ereject "No thanks";',
    full=False,
    oracle_script='require "reject"; reject "No thanks";',
)
c(
    "ereject-conflict",
    'require ["ereject","fileinto"]; fileinto "A"; ereject "x";',
    full=False,
    oracle_script='require ["reject","fileinto"]; fileinto "A"; reject "x";',
)

# --- header test ---------------------------------------------------------------------
c("header-is", 'if header :is "subject" "Meeting on Friday" { fileinto "Hit"; }')
c("header-is-case", 'if header :is "Subject" "meeting ON friday" { fileinto "Hit"; }')
c(
    "header-is-octet",
    'if header :is :comparator "i;octet" "subject" "meeting on friday" { fileinto "Hit"; }',
)
c(
    "header-is-octet-exact",
    'if header :comparator "i;octet" :is "subject" "Meeting on Friday" { fileinto "Hit"; }',
)
c("header-contains", 'if header :contains "subject" "friday" { fileinto "Hit"; }')
c(
    "header-contains-octet",
    'if header :contains :comparator "i;octet" "subject" "friday" { fileinto "Hit"; }',
)
c(
    "header-contains-list",
    'if header :contains ["to", "cc"] ["nobody", "user@"] { fileinto "Hit"; }',
)
c("header-matches-star", 'if header :matches "subject" "*Friday" { fileinto "Hit"; }')
c("header-matches-q", 'if header :matches "subject" "Meeting on F?iday" { fileinto "Hit"; }')
c("header-matches-miss", 'if header :matches "subject" "Meeting" { fileinto "Hit"; }')
c("header-matches-escape", 'if header :matches "subject" "Meeting\\\\*" { fileinto "Hit"; }')
c(
    "header-matches-octet",
    'if header :matches :comparator "i;octet" "subject" "meeting*" { fileinto "Hit"; }',
)
c("header-missing", 'if header :contains "x-nothing" "" { fileinto "Hit"; }')
c("header-empty-key", 'if header :contains "subject" "" { fileinto "Hit"; }')
c("header-default-is", 'if header "x-priority" "3" { fileinto "Hit"; }')
c("header-multi", 'if header :is "x-multi" "second" { fileinto "Hit"; }', "folded")
c(
    "header-folded",
    'if header :is "subject" "This subject is folded   over two lines" { fileinto "Hit"; }',
    "folded",
)
c("header-folded-tab", 'if header :matches "x-long" "one*two" { fileinto "Hit"; }', "folded")
c("header-empty-value", 'if header :is "x-empty" "" { fileinto "Hit"; }', "folded")
c("header-trimmed", 'if header :is "x-spaces" "padded value" { fileinto "Hit"; }', "folded")
c(
    "header-list-names",
    'if header :contains ["x-none", "subject"] "folded" { fileinto "Hit"; }',
    "folded",
)
c("header-spam", 'if header :contains "x-spam-flag" "yes" { fileinto "Junk"; stop; }', "spam")
c("header-spam-level", 'if header :contains "x-spam-level" "*****" { fileinto "Junk"; }', "spam")
c(
    "header-spam-subject",
    'if header :matches "subject" "\\\\*\\\\*\\\\*SPAM*" { fileinto "Junk"; }',
    "spam",
)

# --- RFC 2047 -------------------------------------------------------------------------
c(
    "rfc2047-b",
    'if header :is "subject" "Grüße aus München und Köln" { fileinto "Hit"; }',
    "encoded",
)
c("rfc2047-contains", 'if header :contains "subject" "München" { fileinto "Hit"; }', "encoded")
c("rfc2047-from-name", 'if header :contains "from" "Jürgen" { fileinto "Hit"; }', "encoded")
c("rfc2047-q-latin1", 'if header :contains "to" "André" { fileinto "Hit"; }', "encoded")
c("rfc2047-mixed", 'if header :is "x-mixed" "plain café text" { fileinto "Hit"; }', "encoded")
c("rfc2047-raw-utf8", 'if header :contains "x-raw-utf8" "Büro" { fileinto "Hit"; }', "encoded")
c(
    "rfc2047-casemap-nonascii",
    'if header :contains "subject" "münchen" { fileinto "Hit"; }',
    "encoded",
)
c("rfc2047-matches-var", 'if header :matches "subject" "* aus *" { fileinto "${2}"; }', "encoded")

# --- address test ---------------------------------------------------------------------
c("address-all", 'if address :is "from" "sender@example.com" { fileinto "Hit"; }')
c("address-all-case", 'if address :is :all "from" "SENDER@example.COM" { fileinto "Hit"; }')
c("address-localpart", 'if address :localpart :is "from" "sender" { fileinto "Hit"; }')
c("address-domain", 'if address :domain :is "to" "example.org" { fileinto "Hit"; }')
c("address-domain-contains", 'if address :domain :contains "from" "example" { fileinto "Hit"; }')
c(
    "address-octet",
    'if address :comparator "i;octet" :is "from" "Sender@example.com" { fileinto "Hit"; }',
)
c("address-matches-var", 'if address :matches :domain "from" "*.*" { fileinto "${1}"; }')
c("address-user", 'if address :user :is "from" "john.smith" { fileinto "Hit"; }', "addresses")
c("address-detail", 'if address :detail :is "from" "sales" { fileinto "Hit"; }', "addresses")
c("address-detail-none", 'if address :detail :matches "to" "*" { fileinto "Hit"; }')
c("address-detail-empty", 'if address :detail :is "to" "" { fileinto "Hit"; }')
c("address-user-bcc", 'if address :user "bcc" "user" { fileinto "Hit"; }', "addresses")
c("address-detail-bcc", 'if address :detail "bcc" "lists" { fileinto "Hit"; }', "addresses")
c(
    "address-display-comma",
    'if address :is "from" "john.smith+sales@example.com" { fileinto "Hit"; }',
    "addresses",
)
c("address-group-member", 'if address :is "cc" "bob@example.net" { fileinto "Hit"; }', "addresses")
c("address-group-last", 'if address :localpart "cc" "carol" { fileinto "Hit"; }', "addresses")
c("address-group-name", 'if address :contains "cc" "team" { fileinto "Hit"; }', "addresses")
c(
    "address-empty-group",
    'if address :is "to" "undisclosed-recipients:;" { fileinto "Hit"; }',
    "addresses",
)
c(
    "address-empty-group-domain",
    'if address :domain :matches "to" "*" { fileinto "Hit"; }',
    "addresses",
)
c("address-route", 'if address :is "reply-to" "reply@example.com" { fileinto "Hit"; }', "addresses")
c("address-no-domain-all", 'if address :is "sender" "root" { fileinto "Hit"; }', "addresses")
c(
    "address-no-domain-local",
    'if address :localpart :is "sender" "root" { fileinto "Hit"; }',
    "addresses",
)
c(
    "address-garbage-all",
    'if address :contains "resent-from" "garbage" { fileinto "Hit"; }',
    "addresses",
)
c(
    "address-garbage-domain",
    'if address :domain :contains "resent-from" "here" { fileinto "Hit"; }',
    "addresses",
)
c(
    "address-delivered-to",
    'if address :detail "delivered-to" "box" { fileinto "Hit"; }',
    "addresses",
)
c("address-list-headers", 'if address :is ["from", "to"] "user@example.org" { fileinto "Hit"; }')
c("address-folded-to", 'if address :is "to" "second@example.org" { fileinto "Hit"; }', "folded")
c(
    "address-encoded-name",
    'if address :is "from" "juergen@example.de" { fileinto "Hit"; }',
    "encoded",
)
c("address-not-allowed", 'if address :is "subject" "x" { keep; }', expect_compile_error=True)
c("address-list-sender", 'if address :contains "sender" "bounces" { fileinto "Lists"; }', "list")

# --- envelope ---------------------------------------------------------------------------
c("envelope-from", 'if envelope :is "from" "sender@example.com" { fileinto "Hit"; }')
c("envelope-to", 'if envelope :is "to" "user@example.org" { fileinto "Hit"; }')
c(
    "envelope-to-detail",
    'if envelope :detail "to" "lists" { fileinto "Hit"; }',
    recipient="user+lists@example.org",
)
c(
    "envelope-to-user",
    'if envelope :user "to" "user" { fileinto "Hit"; }',
    recipient="user+lists@example.org",
)
c(
    "envelope-to-detail-var",
    'if envelope :matches :detail "to" "*" { fileinto "L/${1}"; }',
    recipient="user+python@example.org",
)
c("envelope-to-nodetail", 'if envelope :detail :matches "to" "*" { fileinto "Hit"; }')
c("envelope-domain", 'if envelope :domain :is "from" "EXAMPLE.com" { fileinto "Hit"; }')
c("envelope-localpart", 'if envelope :localpart :contains "from" "send" { fileinto "Hit"; }')
c(
    "envelope-octet",
    'if envelope :comparator "i;octet" :is "from" "Sender@example.com" { fileinto "Hit"; }',
)
c("envelope-both", 'if envelope :contains ["from", "to"] "user" { fileinto "Hit"; }')
c("envelope-bad-part", 'if envelope "x-part" "a" { keep; }', expect_compile_error=True)
c("envelope-norequire", 'if envelope "from" "a" { keep; }', full=False, expect_compile_error=True)

# --- exists, size -----------------------------------------------------------------------
c("exists-one", 'if exists "subject" { fileinto "Hit"; }')
c("exists-all", 'if exists ["subject", "x-priority"] { fileinto "Hit"; }')
c("exists-one-missing", 'if exists ["subject", "x-none"] { fileinto "Hit"; }')
c("exists-not", 'if not exists "list-id" { fileinto "Personal"; }')
c("exists-list", 'if exists "list-id" { fileinto "Lists"; }', "list")
c("exists-empty-header", 'if exists "x-empty" { fileinto "Hit"; }', "folded")
c("size-over", 'if size :over 100 { fileinto "Hit"; }')
c("size-under", 'if size :under 100 { fileinto "Hit"; }')
c("size-over-k", 'if size :over 2K { fileinto "Big"; }', "big")
c("size-under-k", 'if size :under 2K { fileinto "Small"; }', "big")
c("size-over-m", 'if size :over 1M { fileinto "Huge"; }', "big")
c("size-exact-plain", f'if size :over {len(MESSAGES["plain"]) - 1} {{ fileinto "Hit"; }}')
c("size-exact-not-over", f'if size :over {len(MESSAGES["plain"])} {{ fileinto "Hit"; }}')
c("size-exact-not-under", f'if size :under {len(MESSAGES["plain"])} {{ fileinto "Hit"; }}')
c("size-no-tag", "if size 100 { keep; }", full=False, expect_compile_error=True)

# --- imap4flags -------------------------------------------------------------------------
c("setflag", 'setflag "\\\\Seen";')
c("setflag-fileinto", 'setflag "\\\\Flagged"; fileinto "A";')
c("addflag-list", 'addflag ["\\\\Seen", "\\\\Answered"]; keep;')
c("addflag-space", 'addflag "\\\\Seen $Label1";')
c("removeflag", 'addflag ["\\\\Seen", "\\\\Flagged"]; removeflag "\\\\seen";')
c("flags-on-fileinto", 'fileinto :flags "\\\\Seen" "A";')
c("flags-on-keep", 'keep :flags ["\\\\Flagged", "$Work"];')
c("flags-explicit-override", 'setflag "\\\\Seen"; fileinto :flags "\\\\Deleted" "A";')
c("flags-empty-explicit", 'setflag "\\\\Seen"; fileinto :flags "" "A";')
c("flags-last-store-wins", 'fileinto :flags "\\\\Seen" "A"; fileinto :flags "\\\\Flagged" "A";')
c(
    "flags-fileinto-inbox-then-keep",
    'fileinto :flags "\\\\Seen" "INBOX"; keep :flags "\\\\Flagged";',
)
c("flags-copy-inbox-wins", 'setflag "\\\\Answered"; fileinto :copy :flags "\\\\Seen" "INBOX";')
c("flags-change-between", 'setflag "\\\\Seen"; fileinto "A"; setflag "\\\\Flagged"; fileinto "B";')
c("hasflag", 'setflag "\\\\Seen"; if hasflag "\\\\seen" { fileinto "Hit"; }')
c("hasflag-contains", 'addflag "$Label1 $Other"; if hasflag :contains "label" { fileinto "Hit"; }')
c("hasflag-miss", 'if hasflag "\\\\Seen" { fileinto "Hit"; }')
c(
    "hasflag-variable",
    'set "myflags" ""; addflag "myflags" "\\\\Draft"; '
    'if hasflag "myflags" "\\\\draft" { fileinto "Hit"; } ',
)
c("setflag-variable-not-internal", 'setflag "fl" "\\\\Seen"; keep;')
c("flags-keyword-case", 'addflag "$MailFlagBit0"; keep;')
c("flags-dup", 'addflag "\\\\Seen"; addflag "\\\\seen"; keep;')

# --- mailbox ----------------------------------------------------------------------------
c("mailboxexists-yes", 'if mailboxexists "Archive" { fileinto "Archive"; }', folders=("Archive",))
c("mailboxexists-no", 'if mailboxexists "Archive" { fileinto "Archive"; }')
c("mailboxexists-inbox", 'if mailboxexists "INBOX" { fileinto "Hit"; }')
c(
    "mailboxexists-list",
    'if mailboxexists ["Archive", "Other"] { fileinto "Hit"; }',
    folders=("Archive",),
)
c(
    "mailboxexists-both",
    'if mailboxexists ["Archive", "Other"] { fileinto "Hit"; }',
    folders=("Archive", "Other"),
)
c(
    "create-norequire",
    'require "fileinto"; fileinto :create "X";',
    full=False,
    expect_compile_error=True,
)

# --- body -------------------------------------------------------------------------------
c("body-contains", 'if body :contains "friday" { fileinto "Hit"; }')
c("body-contains-miss", 'if body :contains "saturday" { fileinto "Hit"; }')
c("body-raw", 'if body :raw :contains "can we meet" { fileinto "Hit"; }')
c("body-raw-qp", 'if body :raw :contains "caf=C3=A9" { fileinto "Hit"; }', "multipart")
c("body-text-qp-decoded", 'if body :text :contains "café" { fileinto "Hit"; }', "multipart")
c(
    "body-content-text",
    'if body :content "text" :contains "unsubscribe" { fileinto "Hit"; }',
    "multipart",
)
c(
    "body-content-plain",
    'if body :content "text/plain" :contains "offer" { fileinto "Hit"; }',
    "multipart",
)
c(
    "body-content-html",
    'if body :content "text/html" :contains "<b>offer</b>" { fileinto "Hit"; }',
    "multipart",
)
c(
    "body-content-app",
    'if body :content "application/octet-stream" :contains "SecretPayload" { fileinto "Hit"; }',
    "multipart",
)
c("body-raw-base64", 'if body :raw :contains "U2VjcmV0" { fileinto "Hit"; }', "multipart")
c("body-matches", 'if body :matches "*meet on friday*" { fileinto "Hit"; }')
c("body-octet", 'if body :comparator "i;octet" :contains "Friday" { fileinto "Hit"; }')
c("body-octet-miss", 'if body :comparator "i;octet" :contains "FRIDAY" { fileinto "Hit"; }')
c(
    "body-unsubscribe",
    'if body :contains ["unsubscribe", "opt out"] { fileinto "Bulk"; }',
    "multipart",
)
c(
    "body-text-html-attachment",
    'if body :text :contains "SecretPayload" { fileinto "Hit"; }',
    "multipart",
)

# --- variables --------------------------------------------------------------------------
c("set-expand", 'set "folder" "Work"; fileinto "${folder}";')
c("set-case-insensitive-name", 'set "Folder" "Work"; fileinto "${FOLDER}";')
c("set-lower", 'set :lower "f" "WORK"; fileinto "${f}";')
c("set-upper", 'set :upper "f" "work"; fileinto "${f}";')
c("set-lowerfirst", 'set :lowerfirst "f" "WORK"; fileinto "${f}";')
c("set-upperfirst", 'set :upperfirst "f" "work"; fileinto "${f}";')
c("set-upperfirst-lower", 'set :upperfirst :lower "f" "wORK"; fileinto "${f}";')
c("set-length", 'set :length "n" "abcdef"; fileinto "len-${n}";')
c("set-length-upper", 'set :length :upper "n" "abc"; fileinto "len-${n}";')
c(
    "set-quotewildcard",
    'set :quotewildcard "q" "a*b?c\\\\d"; if string :is "${q}" '
    '"a\\\\*b\\\\?c\\\\\\\\d" { fileinto "Hit"; }',
)
c("set-unknown-var", 'fileinto "x${nothing}y";')
c("set-not-a-var", 'fileinto "x${1a}y";')
c("set-match-vars", 'if header :matches "subject" "* on *" { fileinto "${1}-${2}"; }')
c("set-match-zero", 'if header :matches "subject" "Meeting*" { set "s" "${0}"; fileinto "${s}"; }')
c("set-match-unset-index", 'if header :matches "subject" "*" { fileinto "a${5}b"; }')
c(
    "set-match-kept-on-fail",
    'if header :matches "subject" "*Friday" { } '
    'if header :matches "subject" "x*" { } fileinto "${1}";',
)
c(
    "set-match-anyof",
    'if anyof (header :matches "x-none" "*", header :matches "from" "*<*>") { fileinto "${2}"; }',
)
c("set-in-header-key", 'set "k" "Friday"; if header :contains "subject" "${k}" { fileinto "Hit"; }')
c(
    "set-reject-reason",
    'set "r" "No mail from ${1}"; if address :matches :domain "from" "*" { reject "${r}"; }',
)
c("set-redirect-target", 'set "t" "fwd"; redirect "${t}@example.net";')
c("string-is", 'set "a" "abc"; if string :is "${a}" "abc" { fileinto "Hit"; }')
c("string-contains", 'if string :contains "hello world" "lo w" { fileinto "Hit"; }')
c("string-matches", 'if string :matches "user+tag" "*+*" { fileinto "${2}"; }')
c("string-empty", 'if string :is "${none}" "" { fileinto "Hit"; }')
c("string-list", 'if string :is ["a", "b"] ["c", "b"] { fileinto "Hit"; }')
c("variables-norequire", 'set "a" "b";', full=False, expect_compile_error=True)
c("variables-not-expanded", 'require "fileinto"; fileinto "${x}";', full=False)
c("set-modifier-clash", 'set :lower :upper "a" "b";', expect_compile_error=True)

# --- vacation: what it would send (dry run) --------------------------------------------
c("vacation-basic", 'vacation "I am away.";')
c("vacation-subject", 'vacation :subject "Away" "I am away.";')
c("vacation-days", 'vacation :days 3 "I am away.";')
c("vacation-days-zero", 'vacation :days 0 "I am away.";')
c("vacation-days-big", 'vacation :days 365 "I am away.";')
c("vacation-from", 'vacation :from "boss@example.org" "I am away.";')
c("vacation-handle", 'vacation :handle "h1" "I am away.";')
c("vacation-mime", "vacation :mime text:\nContent-Type: text/plain\n\nAway.\n.\n;")
c("vacation-and-discard", 'vacation "away"; discard;')
c("vacation-and-fileinto", 'vacation "away"; fileinto "A";')
c("vacation-twice", 'vacation "a"; vacation "b";')
c(
    "vacation-var-subject",
    'if header :matches "subject" "*" { vacation :subject "Re: ${1}" "away"; }',
)
c("vacation-multiline", "vacation text:\nI am away\n..leading dot\n.\n;")

# --- vacation: whether it answers (executed) ---------------------------------------------
V = 'vacation "I am away.";'
c("vac-exec-plain", V, execute=True)
c("vac-exec-list", V, "list", execute=True)
c("vac-exec-auto", V, "auto", execute=True)
c("vac-exec-auto-no", V, "autono", execute=True)
c("vac-exec-bulk", V, "bulk", execute=True)
c("vac-exec-cc", V, "cconly", execute=True)
c("vac-exec-notme", V, "notme", execute=True)
c("vac-exec-addresses", 'vacation :addresses "info@example.org" "away";', "alias", execute=True)
c("vac-exec-alias-no-addresses", V, "alias", execute=True)
c("vac-exec-mailer-daemon", V, execute=True, sender="MAILER-DAEMON@example.com")
c("vac-exec-owner", V, execute=True, sender="owner-list@example.com")
c("vac-exec-request", V, execute=True, sender="list-request@example.com")
c("vac-exec-own", V, execute=True, sender="user@example.org")
c("vac-exec-nosubject", V, "nosubject", execute=True)
c("vac-exec-discard", 'vacation "away"; discard;', execute=True)

# --- syntax corners -----------------------------------------------------------------------
c(
    "multiline-dotstuff",
    'set "m" text:\n..x\n.\n; if string :matches "${m}" ".x?*" { fileinto "Hit"; }',
)
c(
    "multiline-header-key",
    'if header :contains "subject" text: # comment\nFriday\n.\n{ fileinto "Hit"; }',
)
c(
    "comments-everywhere",
    '/* c1 */ if /* c2 */ header /* c3 */ :is # c4\n "subject" '
    '"Meeting on Friday" { # c5\n fileinto "Hit"; /* c6 */ }',
)
c("string-escapes", 'if header :is "subject" "Meeting \\on \\"Friday" { fileinto "Hit"; }')
c(
    "string-escaped-quote-miss",
    'if header :is "subject" "Meeting on \\"Friday\\"" { fileinto "Hit"; }',
)
c("string-list-single", 'if header :is ["subject"] ["Meeting on Friday"] { fileinto "Hit"; }')
c("number-quantifier", 'if size :under 1G { fileinto "Hit"; }')
c("require-list-order", 'require ["variables"]; require "fileinto"; fileinto "A";', full=False)
c("require-unknown", 'require "x-unknown";', full=False, expect_compile_error=True)
c("require-late", 'keep; require "fileinto";', full=False, expect_compile_error=True)
c("fileinto-norequire", 'fileinto "A";', full=False, expect_compile_error=True)
c("unknown-command", "frobnicate;", full=False, expect_compile_error=True)
c("unknown-test", "if frob { keep; }", full=False, expect_compile_error=True)
c("elsif-without-if", "elsif true { keep; }", full=False, expect_compile_error=True)
c("missing-semicolon", "keep", full=False, expect_compile_error=True)
c("bad-tag", "keep :bogus;", full=False, expect_compile_error=True)
c(
    "unknown-comparator",
    'if header :comparator "i;foo" "a" "b" { keep; }',
    full=False,
    expect_compile_error=True,
)
c(
    "two-match-types",
    'if header :is :contains "a" "b" { keep; }',
    full=False,
    expect_compile_error=True,
)
c("copy-norequire", 'redirect :copy "a@example.net";', full=False, expect_compile_error=True)
c(
    "string-for-list",
    'require "fileinto"; fileinto ["A", "B"];',
    full=False,
    expect_compile_error=True,
)
c("unterminated-string", 'keep; if header "a', full=False, expect_compile_error=True)

# --- typical user scripts -------------------------------------------------------------
c(
    "real-lists",
    'if header :contains "list-id" "python-list" { fileinto "Lists/python"; stop; }\n'
    'if exists "list-id" { fileinto "Lists"; }',
    "list",
)
c(
    "real-spam-and-flags",
    'if anyof (header :contains "x-spam-flag" "yes", header :matches "subject" "*SPAM*") {\n'
    '  addflag "\\\\Seen"; fileinto :create "Junk"; stop;\n}\nkeep;',
    "spam",
)
c(
    "real-plus-folders",
    'if envelope :matches :detail "to" "*" { set :lower "box" "${1}"; '
    'if string :is "${box}" "" { keep; } else { fileinto :create "${box}"; } }',
    recipient="user+Shopping@example.org",
)
c(
    "real-forward-and-keep",
    'if address :domain :is "from" "example.com" { redirect :copy "archive@example.net"; }',
)
c(
    "real-reject-domain",
    'if address :domain :is "from" "lottery.example" { reject "We do not accept this."; }',
    "spam",
)

# --- more corners ---------------------------------------------------------------------
c("set-length-unicode", 'set :length "n" "Grüße"; fileinto "len-${n}";')
c("set-upper-unicode", 'set :upper "u" "grüße"; fileinto "${u}";')
c("matches-q-unicode", 'if header :matches "subject" "Gr??e*" { fileinto "Hit"; }', "encoded")
c("addflag-from-var", 'set "f" "\\\\Answered"; addflag "${f}"; keep;')
c(
    "hasflag-var-matches",
    'addflag "fv" ["$a1", "$b2"]; if hasflag :matches "fv" "$b?" { fileinto "Hit"; }',
)
c(
    "body-content-multipart",
    'if body :content "multipart" :contains "prologue" { fileinto "Hit"; }',
    "multipart",
)
c(
    "body-content-empty-type",
    'if body :content "" :contains "SecretPayload" { fileinto "Hit"; }',
    "multipart",
)
c("body-is-whole", 'if body :matches "Hello*Sender*" { fileinto "Hit"; }')
c("header-contains-from-name", 'if header :contains "from" "Sender Person" { fileinto "Hit"; }')
c("address-localpart-case", 'if address :localpart :is "from" "SENDER" { fileinto "Hit"; }')
c("matches-double-star", 'if header :matches "subject" "**Friday" { fileinto "${1}|${2}"; }')
c(
    "matches-var-domain-folder",
    'if address :matches :all "from" "*@*" { fileinto "From/${2}/${1}"; }',
)
c("string-matches-empty", 'if string :matches "" "*" { fileinto "Hit"; }')
c("string-contains-empty-source", 'if string :contains "" "" { fileinto "Hit"; }')
c("exists-case", 'if exists "SUBJECT" { fileinto "Hit"; }')
c("header-list-both", 'if header :matches ["from", "to"] "*example.org*" { fileinto "Hit"; }')
c("size-under-zero", "if size :under 0 { discard; }", full=False)
c("fileinto-flags-var", 'set "fl" "\\\\Seen \\\\Flagged"; fileinto :flags "${fl}" "A";')
c("keep-twice-flags", 'keep; addflag "\\\\Seen"; keep;')
c("discard-twice", "discard; discard;", full=False)
c("stop-after-flags", 'addflag "\\\\Seen"; stop; addflag "\\\\Flagged";')
c("redirect-copy-dup", 'redirect :copy "a@example.net"; redirect "a@example.net";')
c("vacation-reason-var", 'set "r" "back on Monday"; vacation "I am away, ${r}.";')
c("fileinto-copy-then-plain", 'fileinto :copy "A"; fileinto "A";')
c("fileinto-plain-then-copy", 'fileinto "A"; fileinto :copy "A";')
c("redirect-plain-then-copy", 'redirect "a@example.net"; redirect :copy "a@example.net";')
c("fileinto-copy-inbox-keep", 'fileinto :copy "INBOX"; keep;')
c("set-lower-unicode", 'set :lower "u" "GRÜSSE"; fileinto "${u}";')
c("odd-encoded-comma-name", 'if address :is "from" "j@example.com" { fileinto "Hit"; }', "odd")
c("odd-encoded-comma-all", 'if address :matches "from" "*" { fileinto "F/${1}"; }', "odd")
c("odd-quoted-address-name", 'if address :is "to" "user@example.org" { fileinto "Hit"; }', "odd")
c("odd-broken-encoded", 'if header :matches "cc" "*" { fileinto "${1}"; }', "odd")
c("odd-folded-addresses", 'if address :is "reply-to" "b@example.com" { fileinto "Hit"; }', "odd")
c("odd-invalid-b64", 'if header :matches "subject" "*" { fileinto "${1}"; }', "odd")
c("odd-tabs", 'if header :is "x-tab" "value\twith\ttabs" { fileinto "Hit"; }', "odd")
c("odd-8bit", 'if header :contains "x-8bit" "crème" { fileinto "Hit"; }', "odd")
c("odd-missing-is-empty", 'if header :is "x-missing" "" { fileinto "Hit"; }', "odd")

# --- the extensions beyond the base, and the compiler's strictness -----------------------
from sieve_cases_more import CASES as _MORE  # noqa: E402

CASES.extend(_MORE)
