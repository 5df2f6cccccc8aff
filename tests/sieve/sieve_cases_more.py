"""Differential cases for the compiler's strictness and the extensions beyond RFC 5228's base:
include, duplicate, relational, regex, date and index, editheader, encoded-character,
environment, mailbox, mime and foreverypart."""

from __future__ import annotations

from sieve_messages import MESSAGES
from sieve_oracle import Case

CASES: list[Case] = []


def c(case_id: str, script: str, msg: str = "plain", **kw: object) -> None:
    CASES.append(Case(case_id, script, MESSAGES[msg], **kw))  # type: ignore[arg-type]


def err(case_id: str, script: str, msg: str = "plain", **kw: object) -> None:
    """A script both sides must refuse to compile."""
    c(case_id, script, msg, expect_compile_error=True, **kw)


# --- what a command does not take is a compile error -----------------------------------
err("strict-require-missing-semicolon", 'require "fileinto" fileinto "A";')
err("strict-require-list-then-command", 'require ["fileinto"] keep;')
err("strict-keep-string", 'keep "INBOX";')
err("strict-stop-number", "stop 1;")
err("strict-discard-test", "discard true;")
err("strict-keep-test-list", "keep (true);")
err("strict-keep-block", "keep { discard; }")
err("strict-stop-block", "stop { }")
err("strict-discard-unknown-tag", "discard :copy;")
err("strict-stop-then-command", "stop discard;")
err("strict-if-no-block", "if true;")
err("strict-if-two-tests", "if true false { keep; }")
err("strict-if-test-list", "if (true) { keep; }")
err("strict-if-no-test", "if { keep; }")
err("strict-else-test", "if true { keep; } else true { discard; }")
err("strict-else-no-block", "if true { keep; } else;")
err("strict-elsif-no-test", "if false { keep; } elsif { discard; }")
err("strict-allof-single", "if allof true { keep; }")
err("strict-anyof-single", "if anyof false { keep; }")
err("strict-not-list", "if not (true) { keep; }")
err("strict-not-two", "if not true false { keep; }")
err("strict-true-subtest", "if true true { keep; }")
err("strict-header-subtest", 'if header "a" "b" true { keep; }')
err("strict-fileinto-two-strings", 'require "fileinto"; fileinto "A" "B";')
err("strict-fileinto-none", 'require "fileinto"; fileinto;')
err("strict-redirect-number", "redirect 1;")
err("strict-size-string", 'if size :over "10" { keep; }')
err("strict-header-one-arg", 'if header "subject" { keep; }')
err("strict-address-two-parts", 'if address :all :localpart "from" "x" { keep; }')
err("strict-flags-no-argument", 'require "imap4flags"; keep :flags;')
err("strict-set-one-arg", 'require "variables"; set "a";')
err("strict-missing-colon", 'require ["fileinto", "copy"]; fileinto copy "A";')
err("strict-tag-after-positional", 'require "fileinto"; fileinto "A" :copy;')
err("strict-duplicate-tag", 'if header :is :is "a" "b" { keep; }')
err("strict-comparator-twice", 'if header :comparator "i;octet" :comparator "i;octet" "a" "b" {}')
err("strict-require-number", "require 1;")
err("strict-require-in-block", 'if true { require "fileinto"; }')
err("strict-vacation-two-reasons", 'require "vacation"; vacation "a" "b";')
err("strict-block-after-test-command", 'require "fileinto"; fileinto "A" { keep; }')
err("strict-exists-number", "if exists 1 { keep; }")
c("strict-allof-one-in-list", "if allof (true) { discard; }")
c("strict-nested-tests", "if not not allof (anyof (true, false), not false) { discard; }")
c("strict-empty-block", "if true { } discard;")

# --- include (RFC 6609) ----------------------------------------------------------------
SUB_A = 'require "fileinto"; fileinto "FromA";'
SUB_KEEP = "keep;"
c("include-personal", 'require "include"; include "a";', personal=(("a", SUB_A),))
c("include-personal-tag", 'require "include"; include :personal "a";', personal=(("a", SUB_A),))
c("include-global", 'require "include"; include :global "g";',
  global_scripts=(("g", 'require "fileinto"; fileinto "FromGlobal";'),))
c("include-global-and-personal",
  'require ["include", "fileinto"]; include :global "g"; include "a"; fileinto "Main";',
  personal=(("a", SUB_A),), global_scripts=(("g", "discard;"),))
err("include-missing", 'require "include"; include "nothere";')
err("include-missing-global", 'require "include"; include :global "nothere";')
c("include-optional-missing", 'require "include"; include :optional "nothere"; discard;')
c("include-optional-global-missing",
  'require "include"; include :global :optional "nothere"; keep;')
c("include-optional-present", 'require "include"; include :optional "a";',
  personal=(("a", SUB_A),))
c("include-twice-runs-twice",
  'require ["include", "variables", "fileinto"]; set "n" "x"; include "count"; '
  'include "count"; fileinto "n-${n}";',
  personal=(("count", 'require ["include", "variables"]; global "n"; set "n" "${n}x";'),))
c("include-once-runs-once",
  'require ["include", "variables", "fileinto"]; global "n"; set "n" "x"; '
  'include :once "count"; include :once "count"; fileinto "n-${n}";',
  personal=(("count", 'require ["include", "variables"]; global "n"; set "n" "${n}x";'),))
c("include-once-then-plain",
  'require ["include", "variables", "fileinto"]; global "n"; include :once "count"; '
  'include "count"; fileinto "n-${n}";',
  personal=(("count", 'require ["include", "variables"]; global "n"; set "n" "${n}x";'),))
err("include-circular-self", 'require "include"; include "loop";',
    personal=(("loop", 'require "include"; include "loop";'),))
err("include-circular-pair", 'require "include"; include "ping";',
    personal=(("ping", 'require "include"; include "pong";'),
              ("pong", 'require "include"; include "ping";')))
c("include-circular-once", 'require "include"; include :once "ping"; keep;',
  personal=(("ping", 'require "include"; include :once "pong";'),
            ("pong", 'require "include"; include :once "ping";')))
c("include-return",
  'require ["include", "fileinto"]; include "r"; fileinto "AfterReturn";',
  personal=(("r", 'require ["include", "fileinto"]; fileinto "Before"; return; '
                  'fileinto "NotReached";'),))
c("include-return-in-main", 'require ["include", "fileinto"]; fileinto "A"; return; discard;')
c("include-stop-in-included",
  'require ["include", "fileinto"]; include "s"; fileinto "NotReached";',
  personal=(("s", 'require "fileinto"; fileinto "S"; stop;'),))
c("include-discard-cancels-keep", 'require "include"; include "d";',
  personal=(("d", "discard;"),))
c("include-keep-in-included", 'require ["include"]; include "k"; discard;',
  personal=(("k", SUB_KEEP),))
c("include-in-block",
  'require ["include"]; if header :contains "subject" "friday" { include "a"; }',
  personal=(("a", SUB_A),))
c("include-in-false-block",
  'require ["include"]; if false { include "a"; }', personal=(("a", SUB_A),))
err("include-broken-script", 'require "include"; include "bad";',
    personal=(("bad", "frobnicate;"),))
err("include-needs-own-require", 'require ["include", "fileinto"]; include "noreq";',
    personal=(("noreq", 'fileinto "X";'),))
err("include-norequire", 'include "a";', personal=(("a", SUB_A),))
err("include-location-twice", 'require "include"; include :personal :global "a";',
    personal=(("a", SUB_A),))
err("include-name-slash", 'require "include"; include "a/b";')
err("include-name-variable", 'require ["include", "variables"]; set "x" "a"; include "${x}";',
    personal=(("a", SUB_A),))
err("include-name-list", 'require "include"; include ["a", "b"];', personal=(("a", SUB_A),))
c("include-global-variable",
  'require ["include", "variables", "fileinto"]; global "where"; set "where" "Box"; '
  'include "use";',
  personal=(("use", 'require ["include", "variables", "fileinto"]; global "where"; '
                    'fileinto "${where}";'),))
c("include-global-set-in-included",
  'require ["include", "variables", "fileinto"]; global "v"; include "setter"; '
  'fileinto "got-${v}";',
  personal=(("setter", 'require ["include", "variables"]; global "v"; set "v" "it";'),))
c("include-global-namespace",
  'require ["include", "variables", "fileinto"]; include "setter"; fileinto "${global.v}";',
  personal=(("setter", 'require ["include", "variables"]; global "v"; set "v" "ns";'),))
c("include-global-namespace-set",
  'require ["include", "variables", "fileinto"]; set "global.v" "direct"; include "use";',
  personal=(("use", 'require ["include", "variables", "fileinto"]; global "v"; '
                    'fileinto "${v}";'),))
c("include-locals-are-local",
  'require ["include", "variables", "fileinto"]; set "l" "main"; include "other"; '
  'fileinto "l-${l}";',
  personal=(("other", 'require ["variables", "fileinto"]; set "l" "other"; fileinto "o-${l}";'),))
c("include-match-vars-per-script",
  'require ["include", "variables", "fileinto"]; if header :matches "subject" "* on *" {} '
  'include "m"; fileinto "main-${1}";',
  personal=(("m", 'require ["variables", "fileinto"]; fileinto "sub-${1}";'),))
err("include-global-without-variables", 'require "include"; global "g";')
err("include-global-after-local", 'require ["include", "variables"]; set "g" "x"; global "g";')
err("include-global-after-reference",
    'require ["include", "variables", "fileinto"]; fileinto "${g}"; global "g";')
err("include-global-bad-name", 'require ["include", "variables"]; global "1x";')
err("include-return-norequire", "return;")
err("include-return-argument", 'require "include"; return "x";')
c("include-flags-shared",
  'require ["include", "imap4flags"]; addflag "\\\\Seen"; include "f"; keep;',
  personal=(("f", 'require "imap4flags"; addflag "\\\\Flagged";'),))
c("include-nested-three",
  'require "include"; include "l1";',
  personal=(("l1", 'require "include"; include "l2";'),
            ("l2", 'require "include"; include "l3";'),
            ("l3", 'require "fileinto"; fileinto "Deep";')))


def _chain(depth: int) -> tuple[tuple[str, str], ...]:
    scripts = [(f"d{i}", f'require "include"; include "d{i + 1}";') for i in range(1, depth)]
    scripts.append((f"d{depth}", 'require "fileinto"; fileinto "Bottom";'))
    return tuple(scripts)


c("include-depth-10", 'require "include"; include "d1";', personal=_chain(10))
err("include-depth-11", 'require "include"; include "d1";', personal=_chain(11))
c("include-same-from-two-places",
  'require "include"; include "a"; include "b";',
  personal=(("a", 'require "include"; include "c";'), ("b", 'require "include"; include "c";'),
            ("c", 'require "fileinto"; fileinto "C";')))

# --- duplicate (RFC 7352) ----------------------------------------------------------------
# sieve-test remembers nothing between runs: every first test is "not a duplicate", and
# what would be remembered shows as "track duplicate" lines, compared with our marks.
DUP = 'require ["duplicate", "fileinto"]; '
c("dup-basic", DUP + 'if duplicate { fileinto "Dup"; }')
c("dup-handle", DUP + 'if duplicate :handle "lists" { fileinto "Dup"; }')
c("dup-header", DUP + 'if duplicate :header "subject" { fileinto "Dup"; }')
c("dup-header-missing", DUP + 'if duplicate :header "x-none" { fileinto "Dup"; }')
c("dup-uniqueid", DUP + 'if duplicate :uniqueid "abc" { fileinto "Dup"; }')
c("dup-uniqueid-var",
  'require ["duplicate", "variables"]; if header :matches "from" "*" '
  '{ if duplicate :uniqueid "${1}" { discard; } }')
c("dup-last", DUP + 'if duplicate :last { fileinto "Dup"; }')
c("dup-seconds", DUP + 'if duplicate :seconds 3600 { fileinto "Dup"; }')
c("dup-seconds-over-max", DUP + 'if duplicate :seconds 999999999 { fileinto "Dup"; }')
c("dup-all-tags",
  DUP + 'if duplicate :handle "h" :header "subject" :seconds 60 :last { fileinto "Dup"; }')
c("dup-two-handles", DUP + 'if duplicate :handle "a" {} if duplicate :handle "b" {}')
c("dup-last-and-not", DUP + "if duplicate {} if duplicate :last {}")
c("dup-no-message-id", DUP + 'if duplicate { fileinto "Dup"; }', "nomsgid")
c("dup-not", DUP + 'if not duplicate { fileinto "First"; }')
err("dup-header-and-uniqueid", DUP + 'if duplicate :header "subject" :uniqueid "x" { keep; }')
err("dup-norequire", "if duplicate { keep; }")
err("dup-positional", DUP + 'if duplicate "x" { keep; }')
err("dup-seconds-string", DUP + 'if duplicate :seconds "60" { keep; }')
c("dup-bad-header", DUP + 'if duplicate :header "a b" { keep; }')
c("header-bad-name-warns", 'if header "a b" "x" { discard; } if exists "a:b" { discard; }')

# --- relational (RFC 5231) and i;ascii-numeric ---------------------------------------------
REL = 'require ["relational", "comparator-i;ascii-numeric", "fileinto"]; '
RELV = REL + 'require "variables"; '
NUM = ':comparator "i;ascii-numeric"'
c("rel-count-to", REL + f'if address :count "eq" {NUM} "to" "1" {{ fileinto "Hit"; }}')
c("rel-count-cc-group", REL + f'if address :count "ge" {NUM} "cc" "3" {{ fileinto "Hit"; }}',
  "addresses")
c("rel-count-header-multi",
  REL + f'if header :count "eq" {NUM} "x-multi" "2" {{ fileinto "Hit"; }}', "folded")
c("rel-count-header-none", REL + f'if header :count "eq" {NUM} "x-none" "0" {{ fileinto "Hit"; }}')
c("rel-count-list", REL + f'if header :count "eq" {NUM} ["to", "from"] "2" {{ fileinto "Hit"; }}')
c("rel-count-lt", REL + f'if header :count "lt" {NUM} "received" "1" {{ fileinto "Hit"; }}')
c("rel-count-ne", REL + f'if header :count "ne" {NUM} "subject" "1" {{ fileinto "Hit"; }}')
c("rel-count-casemap", REL + 'if header :count "eq" "subject" "1" { fileinto "Hit"; }')
c("rel-count-casemap-10", REL + 'if header :count "lt" "x-multi" "10" { fileinto "Hit"; }',
  "folded")
c("rel-value-numeric-gt",
  REL + f'if header :value "gt" {NUM} "x-priority" "2" {{ fileinto "Hit"; }}')
c("rel-value-numeric-le",
  REL + f'if header :value "le" {NUM} "x-priority" "3" {{ fileinto "Hit"; }}')
c("rel-value-numeric-lt-miss",
  REL + f'if header :value "lt" {NUM} "x-priority" "3" {{ fileinto "Hit"; }}')
c("rel-value-spam-score",
  REL + f'if header :value "ge" {NUM} "x-spam-score" "7" {{ fileinto "Junk"; }}', "spam")
c("rel-value-numeric-leading-zeros",
  RELV + f'if string :value "eq" {NUM} "007" "7" {{ fileinto "Hit"; }}')
c("rel-value-numeric-infinity",
  RELV + f'if string :value "gt" {NUM} "abc" "99999" {{ fileinto "Hit"; }}')
c("rel-value-numeric-both-infinite",
  RELV + f'if string :value "eq" {NUM} "abc" "xyz" {{ fileinto "Hit"; }}')
c("rel-value-numeric-empty",
  RELV + f'if string :value "lt" {NUM} "" "1" {{ fileinto "Hit"; }}')
c("rel-value-casemap-gt", REL + 'if header :value "gt" "subject" "MEETING" { fileinto "Hit"; }')
c("rel-value-casemap-lt", REL + 'if header :value "lt" "subject" "Zebra" { fileinto "Hit"; }')
c("rel-value-octet", REL + 'if header :value "lt" :comparator "i;octet" "subject" "meeting" '
  '{ fileinto "Hit"; }')
c("rel-value-ne", REL + 'if header :value "ne" "subject" "x" { fileinto "Hit"; }')
c("rel-value-address-domain",
  REL + 'if address :domain :value "ge" "from" "example.com" { fileinto "Hit"; }')
c("rel-value-envelope", REL + 'require "envelope"; '
  'if envelope :value "eq" "from" "SENDER@example.com" { fileinto "Hit"; }')
c("rel-count-envelope", REL + f'require "envelope"; '
  f'if envelope :count "eq" {NUM} ["from", "to"] "2" {{ fileinto "Hit"; }}')
c("rel-string-count-skips-empty",
  REL + f'require "variables"; if string :count "eq" {NUM} ["a", "", "b"] "2" '
  '{ fileinto "Hit"; }')
c("rel-hasflag-count",
  REL + f'require "imap4flags"; addflag ["\\\\Seen", "\\\\Flagged"]; '
  f'if hasflag :count "eq" {NUM} "2" {{ fileinto "Hit"; }}')
c("rel-is-numeric", REL + f'if header :is {NUM} "x-priority" "03" {{ fileinto "Hit"; }}')
c("rel-body-count", REL + f'require "body"; if body :count "eq" {NUM} :text "1" '
  '{ fileinto "Hit"; }', "multipart")
c("rel-body-count-2", REL + f'require "body"; if body :count "eq" {NUM} :text "2" '
  '{ fileinto "Hit"; }', "multipart")
err("rel-bad-operator", REL + 'if header :value "gg" "subject" "x" { keep; }')
err("rel-operator-uppercase", REL + 'if header :value "GT" "subject" "x" { keep; }')
err("rel-operator-missing", REL + 'if header :count "subject" "1" { keep; }')
err("rel-norequire", 'if header :count "eq" "subject" "1" { keep; }')
err("rel-numeric-norequire",
    'require "relational"; if header :value "gt" :comparator "i;ascii-numeric" "a" "1" {}')
err("rel-numeric-contains", REL + f'if header :contains {NUM} "subject" "1" {{ keep; }}')
err("rel-numeric-matches", REL + f'if header :matches {NUM} "subject" "1*" {{ keep; }}')
err("rel-count-and-value", REL + 'if header :count "eq" :value "eq" "subject" "1" { keep; }')
err("rel-count-and-is", REL + 'if header :count "eq" :is "subject" "1" { keep; }')

# --- regex (draft-ietf-sieve-regex, POSIX extended) -------------------------------------
RX = 'require ["regex", "variables", "fileinto"]; '


def rx(case_id: str, pattern: str, header: str = "subject", msg: str = "plain",
       folder: str = "${0}|${1}|${2}|${3}", **kw: object) -> None:
    """``pattern`` is written as Sieve source (backslashes doubled)."""
    test = f'if header :regex "{header}" "{pattern}" {{ fileinto "{folder}"; }}'
    c(f"regex-{case_id}", RX + test, msg, **kw)


rx("plain", "Friday")
rx("anchored", "^Meeting on ([A-Za-z]+)$")
rx("anchor-miss", "^on Friday")
rx("icase-default", "meeting ON (friday)")
rx("octet-case", "meeting", folder="Hit")
c("regex-octet-miss", RX + 'if header :regex :comparator "i;octet" "subject" "meeting" '
  '{ fileinto "Hit"; }')
c("regex-octet-hit", RX + 'if header :regex :comparator "i;octet" "subject" "M(ee)ting" '
  '{ fileinto "${1}"; }')
rx("groups", "(M[a-z]+) (on) (F.*)")
rx("dot-star-greedy", "(.*) (.*)")
rx("alternation-longest", "(on|on F)")
rx("alternation-order", "(Meet|Meeting) on")
rx("optional-group", "Meeting( on)?( Friday)?")
rx("nested-groups", "((Meet)(ing))")
rx("non-participating", "(x)?(Meeting)")
rx("bracket-class", "([[:upper:]][[:lower:]]+)")
rx("bracket-negated", "([^ ]+)$")
rx("bracket-close-first", "([]a-z]+)")
rx("bracket-backslash", "([\\\\]?)Meeting")
rx("bracket-dash-last", "([a-z-]+)")
rx("interval", "(e{2})")
rx("interval-open", "([a-z]{3,})")
rx("interval-range", "(o{1,2}n)")
rx("stacked-quantifiers", "(e+*)t")
rx("plus", "(e+)")
rx("question", "(Fri)?day")
rx("escaped-dot", "\\\\.", folder="Hit")
rx("escaped-paren-literal", "\\\\(", folder="Hit")
rx("unmatched-close-literal", "a)", folder="Hit")
rx("word-class", "(\\\\w+)$")
rx("space-class", "on\\\\s(\\\\S+)")
rx("backref", "(e)\\\\1")
rx("empty-alternative", "(x|)Meeting")
rx("digits", "([0-9]+)\\\\.([0-9]+)", msg="list")
rx("list-prefix", "^\\\\[([^]]+)\\\\]", msg="list")
rx("from-address", "<([^@]+)@([^>]+)>", header="from")
rx("multi-key", "x", folder="Hit")
c("regex-key-list", RX + 'if header :regex "subject" ["^x", "Fri(day)"] { fileinto "${1}"; }')
c("regex-address", RX + 'if address :regex :domain "from" "^ex(am)ple" { fileinto "${1}"; }')
c("regex-envelope", RX + 'require "envelope"; '
  'if envelope :regex "from" "^(.*)@(.*)$" { fileinto "${2}/${1}"; }')
c("regex-string", RX + 'set "v" "2024-05-06"; '
  'if string :regex "${v}" "^([0-9]{4})-([0-9]{2})" { fileinto "${1}/${2}"; }')
c("regex-key-from-variable", RX + 'set "p" "F(r)iday"; '
  'if header :regex "subject" "${p}" { fileinto "${1}"; }')
c("regex-bad-key-from-variable", RX + 'set "p" "(unclosed"; '
  'if header :regex "subject" "${p}" { fileinto "Hit"; }')
c("regex-body", 'require ["regex", "body", "fileinto"]; '
  'if body :regex "meet on [A-Z][a-z]+day" { fileinto "Hit"; }')
c("regex-no-match-keeps-vars", RX + 'if header :matches "subject" "* on *" {} '
  'if header :regex "subject" "nothing" {} fileinto "${1}";')
for n, bad in enumerate(["*a", "a{", "a{2,1}", "(a", "[a", "[z-a]", "[[:foo:]]", "\\\\1",
                         "a\\\\", "(?:a)", "{1}", "a|*b", "x{32768}", "[a-z-0]", "a{x}"]):
    err(f"regex-invalid-{n}", RX + f'if header :regex "subject" "{bad}" {{ keep; }}')
err("regex-numeric-comparator", 'require ["regex", "comparator-i;ascii-numeric"]; '
    'if header :regex :comparator "i;ascii-numeric" "subject" "1" { keep; }')
err("regex-norequire", 'if header :regex "subject" "a" { keep; }')
err("regex-and-matches", RX + 'if header :regex :matches "subject" "a" { keep; }')

# --- date and index (RFC 5260) ------------------------------------------------------------
DT = 'require ["date", "variables", "fileinto"]; '


def date_case(case_id: str, test: str, msg: str = "dated") -> None:
    c(f"date-{case_id}", DT + f'if {test} {{ fileinto "${{1}}"; }}', msg)


for part in ("year", "month", "day", "date", "julian", "hour", "minute", "second", "time",
             "iso8601", "std11", "zone", "weekday"):
    date_case(f"part-{part}-original", f'date :originalzone :matches "date" "{part}" "*"')
    date_case(f"part-{part}-utc", f'date :zone "+0000" :matches "date" "{part}" "*"')
date_case("zone-negative", 'date :zone "-0930" :matches "date" "iso8601" "*"')
date_case("zone-positive", 'date :zone "+1400" :matches "date" "std11" "*"')
date_case("local-zone", 'date :matches "date" "iso8601" "*"')
date_case("received", 'date :originalzone :matches "received" "iso8601" "*"')
# Pigeonhole 0.5.19 ignores :index in the date test (it always reads the first field);
# lmtpd follows RFC 5260 there, so those cases are unit tests (test_extensions.py).
date_case("no-weekday-no-seconds", 'date :originalzone :matches "resent-date" "iso8601" "*"')
date_case("leap-day-julian", 'date :matches "resent-date" "julian" "*"')
date_case("invalid", 'date :matches "x-bad-date" "date" "*"')
date_case("missing-header", 'date :matches "x-none" "date" "*"')
date_case("plain-message", 'date :originalzone :matches "date" "std11" "*"', "plain")
date_case("unknown-part", 'date :matches "date" "fortnight" "*"')
date_case("part-case", 'date :zone "+0000" :matches "date" "YEAR" "*"')
c("date-value-ge", DT + 'require "relational"; '
  'if date :value "ge" :zone "+0000" "date" "date" "2025-01-01" { fileinto "New"; }', "dated")
c("date-value-lt", DT + 'require "relational"; '
  'if date :value "lt" :originalzone "date" "hour" "09" { fileinto "Morning"; }', "dated")
c("date-is", DT + 'if date :is :zone "+0000" "date" "weekday" "3" { fileinto "Wednesday"; }',
  "dated")
c("date-is-monday", DT + 'if date :is "date" "weekday" "1" { fileinto "Monday"; }')
c("date-invalid-zone-warns", DT + 'if date :zone "CET" :matches "date" "zone" "*" '
  '{ fileinto "${1}"; }', "dated")
c("date-zone-variable", DT + 'set "z" "-0100"; '
  'if date :zone "${z}" :matches "date" "time" "*" { fileinto "${1}"; }', "dated")
c("currentdate-year", DT + 'require "relational"; '
  'if currentdate :value "ge" "year" "2024" { fileinto "Now"; }')
c("currentdate-zone", DT + 'if currentdate :zone "+0530" :matches "zone" "*" { fileinto "${1}"; }')
c("currentdate-local-zone", DT + 'if currentdate :matches "zone" "*" { fileinto "${1}"; }')
c("currentdate-date-format", DT + 'if currentdate :matches "date" "????-??-??" { fileinto "Ok"; }')
c("currentdate-unknown-part", DT + 'if currentdate :matches "nonsense" "*" { fileinto "Hit"; }')
err("date-two-zones", DT + 'if date :zone "+0000" :originalzone "date" "year" "2025" { keep; }')
err("currentdate-originalzone", DT + 'if currentdate :originalzone "year" "2025" { keep; }')
err("date-norequire", 'if date "date" "year" "2025" { keep; }')
err("date-missing-part", DT + 'if date "date" "2025" { keep; }')
err("currentdate-header-arg", DT + 'if currentdate "date" "year" "2025" { keep; }')
IX = 'require ["index", "variables", "fileinto"]; '
c("index-header-2", IX + 'if header :index 2 :matches "x-count" "*" { fileinto "${1}"; }',
  "dated")
c("index-header-last", IX + 'if header :index 1 :last :matches "x-count" "*" '
  '{ fileinto "${1}"; }', "dated")
c("index-header-out-of-range", IX + 'if header :index 9 :matches "x-count" "*" '
  '{ fileinto "Hit"; }', "dated")
c("index-header-list", IX + 'if header :index 2 :matches ["x-count", "subject"] "*" '
  '{ fileinto "${1}"; }', "dated")
c("index-address", IX + 'if address :index 2 :matches "to" "*" { fileinto "${1}"; }', "folded")
c("index-address-last", IX + 'if address :index 1 :last :matches "to" "*" { fileinto "${1}"; }',
  "folded")
c("index-address-first", IX + 'if address :index 1 :matches "to" "*" { fileinto "${1}"; }',
  "folded")
c("index-address-list", IX + 'if address :index 2 :all :matches ["from", "to"] "*" '
  '{ fileinto "${1}"; }', "folded")
c("index-date-first", 'require ["index", "date", "variables", "fileinto"]; '
  'if date :index 1 :originalzone :matches "received" "zone" "*" { fileinto "${1}"; }', "dated")
err("index-zero", IX + 'if header :index 0 "subject" "x" { keep; }')
err("index-last-alone", IX + 'if header :last "subject" "x" { keep; }')
err("index-norequire", 'if header :index 1 "subject" "x" { keep; }')
err("index-string", IX + 'if header :index "1" "subject" "x" { keep; }')
err("index-on-exists", IX + 'if exists :index 1 "subject" { keep; }')

# --- editheader (RFC 5293): the stored copies are compared byte for byte --------------------
EH = 'require ["editheader", "fileinto", "variables"]; '


def eh(case_id: str, script: str, msg: str = "plain", **kw: object) -> None:
    c(f"editheader-{case_id}", EH + script, msg, stored=True, folders=("A", "B"), **kw)


eh("add", 'addheader "X-Added" "one";')
eh("add-last", 'addheader :last "X-Added" "at the end";')
eh("add-two", 'addheader "X-First" "1"; addheader "X-Second" "2";')
eh("add-name-case", 'addheader "x-sPAM-level" "***";')
eh("add-subject", 'addheader "Subject" "second subject";')
eh("add-long-folded",
   'addheader "X-Long" "' + " ".join(f"word{i:02d}" for i in range(40)) + '";')
eh("add-long-no-spaces", 'addheader "X-Token" "' + "x" * 120 + '";')
eh("add-newline-in-value", 'addheader "X-Multi" "line one\\nline two";')
eh("add-variable", 'if header :matches "subject" "*" { addheader "X-Was" "${1}"; }')
eh("delete", 'deleteheader "x-priority";')
eh("delete-missing", 'deleteheader "x-nothing";')
eh("delete-all-multi", 'deleteheader "x-multi";', "folded")
eh("delete-index", 'deleteheader :index 2 "x-multi";', "folded")
eh("delete-index-last", 'deleteheader :index 1 :last "x-multi";', "folded")
eh("delete-index-zero-all", 'deleteheader :index 0 "x-multi";', "folded")
eh("delete-index-out-of-range", 'deleteheader :index 5 "x-multi";', "folded")
eh("delete-value-is", 'deleteheader "x-multi" "first";', "folded")
eh("delete-value-contains", 'deleteheader :contains "x-multi" "sec";', "folded")
eh("delete-value-matches", 'deleteheader :matches "x-multi" "*s*";', "folded")
eh("delete-value-list", 'deleteheader "x-multi" ["first", "second"];', "folded")
eh("delete-value-index", 'deleteheader :index 2 "x-multi" "first";', "folded")
eh("delete-value-index-hit", 'deleteheader :index 2 :contains "x-multi" "sec";', "folded")
eh("delete-value-octet", 'deleteheader :comparator "i;octet" "x-multi" "FIRST";', "folded")
eh("delete-folded", 'deleteheader "subject";', "folded")
eh("delete-encoded-value", 'deleteheader :contains "subject" "München";', "encoded")
eh("delete-received-forbidden", 'deleteheader "received";', "dated")
eh("delete-auto-submitted-forbidden", 'deleteheader "auto-submitted";', "auto")
eh("delete-subject-allowed", 'deleteheader "subject";')
eh("delete-then-add", 'deleteheader "subject"; addheader "Subject" "replaced";')
eh("fileinto-before-edit", 'fileinto "A"; addheader "X-After" "yes";')
eh("fileinto-after-edit", 'addheader "X-Before" "yes"; fileinto "A";')
eh("fileinto-between-edits",
   'addheader "X-One" "1"; fileinto "A"; addheader "X-Two" "2"; fileinto "B";')
eh("keep-then-edit", 'keep; addheader "X-After" "yes";')
eh("edit-then-keep", 'addheader "X-Before" "yes"; keep;')
eh("fileinto-copy-edit", 'require "copy"; fileinto :copy "A"; deleteheader "subject";')
eh("add-multiline-value", 'addheader "X-Lines" text:\nfirst line\n   second line\n.\n;')
eh("add-multiline-trailing-blank", 'addheader "X-T" text:\nabc \n.\n;')
eh("add-multiline-variable", 'set "v" text:\nabc \n.\n; addheader "X-V" "${v}x";')
eh("add-multiline-long", 'addheader "X-Lines" text:\n' + "a " * 50 + "\n" + "b " * 10 + "\n.\n;")
eh("test-sees-added",
   'addheader "X-Tag" "hello"; if header :is "x-tag" "hello" { fileinto "A"; }')
eh("test-sees-deleted",
   'deleteheader "subject"; if not exists "subject" { fileinto "A"; }')
eh("address-sees-added",
   'addheader "Reply-To" "other@example.net"; '
   'if address :is "reply-to" "other@example.net" { fileinto "A"; }')
eh("crlf-message", 'addheader "X-Added" "crlf";', "crlf")
eh("add-then-delete", 'addheader "X-Temp" "t"; deleteheader "x-temp";')
eh("delete-last-added", 'addheader :last "X-Multi" "third"; deleteheader :index 1 :last "x-multi";',
   "folded")
eh("add-protected", 'addheader "X-Lmtpd-Redirected" "<x@example.net>";',
   oracle_script=EH + 'addheader "X-Sieve-Redirected-From" "<x@example.net>";')
err("editheader-bad-name", EH + 'addheader "X Bad" "v";')
err("editheader-colon-name", EH + 'addheader "X:Bad" "v";')
err("editheader-norequire", 'addheader "X-A" "v";')
eh("last-without-index", 'deleteheader :last "x-multi";', "folded")
err("editheader-index-string", EH + 'deleteheader :index "1" "x-a";')
err("editheader-add-one-arg", EH + 'addheader "X-A";')
err("editheader-delete-no-name", EH + "deleteheader;")
err("editheader-too-large", EH + 'addheader "X-Big" "' + "v" * 2049 + '";')
c("editheader-value-1024", EH + 'addheader "X-Big" "' + "v" * 1024 + '";')
err("editheader-delete-bad-name", EH + 'deleteheader "a b";')

# --- encoded-character (RFC 5228 2.4.2.4) ------------------------------------------------
EC = 'require ["encoded-character", "fileinto"]; '
c("encoded-hex", EC + 'fileinto "${hex:41 42 43}";')
c("encoded-hex-lower", EC + 'fileinto "${hex:6d 65}x";')
c("encoded-hex-utf8", EC + 'fileinto "${hex:C3 BC}ber";')
c("encoded-unicode", EC + 'fileinto "${unicode:263a}";')
c("encoded-unicode-several", EC + 'fileinto "${unicode: 48 49 }";')
c("encoded-abbreviated", EC + 'fileinto "${h:41}${u:42}${:43}${HEX:44}";')
c("encoded-not-well-formed", EC + 'fileinto "${hex:}${hex:4G}${hexa:41}${hex:414}x";')
c("encoded-unterminated", EC + 'fileinto "${hex:41";')
c("encoded-in-test", EC + 'if header :contains "subject" "${hex:46 72}iday" { fileinto "Hit"; }')
c("encoded-in-list", EC + 'if header :is "subject" ["x", "Meeting on ${unicode:46}riday"] '
  '{ fileinto "Hit"; }')
c("encoded-multiline", EC + 'fileinto text:\n${hex:41}b\n.\n;')
c("encoded-not-required", 'require "fileinto"; fileinto "${hex:41}";')
c("encoded-makes-variable", EC + 'require "variables"; set "x" "Box"; fileinto "${hex:24}{x}";')
c("encoded-nested", EC + 'fileinto "${hex:${hex:41}}";')
err("encoded-bad-unicode", EC + 'fileinto "${unicode:D800}";')
err("encoded-unicode-too-big", EC + 'fileinto "${unicode:110000}";')
c("encoded-bad-unicode-not-closed", EC + 'fileinto "${unicode:D800";')

# --- environment (RFC 5183) ---------------------------------------------------------------
# sieve-test calls itself location "MS" in phase "post"; lmtpd is an MDA during delivery.
EN = 'require ["environment", "variables", "fileinto"]; '
c("environment-location", EN + 'if environment :is "location" "MDA" { fileinto "Hit"; }',
  oracle_script=EN + 'if environment :is "location" "MS" { fileinto "Hit"; }')
c("environment-phase", EN + 'if environment :is "phase" "during" { fileinto "Hit"; }',
  oracle_script=EN + 'if environment :is "phase" "post" { fileinto "Hit"; }')
c("environment-name", EN + 'if environment :contains "name" "lmtpd" { fileinto "Hit"; }',
  oracle_script=EN + 'if environment :contains "name" "Pigeonhole" { fileinto "Hit"; }')
c("environment-host", EN + 'if environment :matches "host" "*" { fileinto "${1}"; }')
c("environment-domain", EN + 'if environment :matches "domain" "*" { fileinto "${1}"; }')
c("environment-unknown", EN + 'if environment :matches "nonsense" "*" { fileinto "Hit"; }')
c("environment-unknown-empty", EN + 'if environment :is "nonsense" "" { fileinto "Hit"; }')
c("environment-case", EN + 'if environment :matches "HOST" "*" { fileinto "${1}"; }')
c("environment-remote", EN + 'if environment :matches "remote-ip" "*" { fileinto "Hit"; }')
err("environment-norequire", 'if environment "host" "x" { keep; }')
err("environment-one-arg", EN + 'if environment "host" { keep; }')

# --- mailbox (RFC 5490) -------------------------------------------------------------------
MB = 'require ["mailbox", "fileinto", "variables"]; '
c("mailbox-exists-variable", MB + 'set "f" "Archive"; if mailboxexists "${f}" { fileinto "${f}"; }',
  folders=("Archive",))
c("mailbox-create-variable", MB + 'set "f" "New"; fileinto :create "${f}";')
c("mailbox-exists-empty-list", MB + 'if mailboxexists "Nope" { keep; } else { discard; }')
err("mailbox-norequire", 'if mailboxexists "INBOX" { keep; }')
err("mailbox-exists-number", MB + "if mailboxexists 1 { keep; }")

# --- mime and foreverypart (RFC 5703) ------------------------------------------------------
MM = 'require ["mime", "foreverypart", "variables", "fileinto"]; '
c("mime-foreverypart-types", MM + 'foreverypart { if header :mime :contenttype :matches '
  '"content-type" "*" { fileinto "${1}"; } }', "multipart")
c("mime-foreverypart-plain", MM + 'foreverypart { fileinto "part"; }')
c("mime-foreverypart-type", MM + 'foreverypart { if header :mime :type "content-type" "text" '
  '{ fileinto "Text"; } }', "multipart")
c("mime-foreverypart-subtype", MM + 'foreverypart { if header :mime :subtype :matches '
  '"content-type" "*" { fileinto "sub-${1}"; } }', "multipart")
c("mime-foreverypart-param", MM + 'foreverypart { if header :mime :param "charset" :matches '
  '"content-type" "*" { fileinto "cs-${1}"; } }', "multipart")
c("mime-foreverypart-param-name", MM + 'foreverypart { if header :mime :param "name" :is '
  '"content-type" "data.bin" { fileinto "Attachment"; } }', "multipart")
c("mime-foreverypart-whole-header", MM + 'foreverypart { if header :mime :matches '
  '"content-type" "*" { fileinto "${1}"; } }', "multipart")
c("mime-foreverypart-break", MM + 'foreverypart { if header :mime :subtype "content-type" '
  '"plain" { fileinto "Found"; break; } fileinto "Before"; }', "multipart")
c("mime-foreverypart-named-break", MM + 'foreverypart :name "outer" { foreverypart '
  '{ break :name "outer"; } fileinto "NotReached"; } fileinto "After";', "multipart")
# Pigeonhole 0.5.19 fails ("corrupt binary") when commands follow a nested loop that found
# no parts; those scripts are unit tests (test_extensions.py), these run on both.
c("mime-foreverypart-inner-break", MM + 'foreverypart :name "outer" { fileinto "Outer"; '
  'foreverypart { break; } }', "multipart")
c("mime-foreverypart-nested", MM + 'foreverypart { foreverypart { if header :mime :contenttype '
  ':matches "content-type" "*" { fileinto "in-${1}"; } } }', "multipart")
c("mime-foreverypart-nested-count", MM + 'set "n" ""; foreverypart { set "n" "${n}o"; '
  'foreverypart { set "n" "${n}x"; } } fileinto "${n}";', "multipart")
c("mime-foreverypart-nested-plain", MM + 'foreverypart { foreverypart { fileinto "Child"; } }')
c("mime-foreverypart-count-parts", MM + 'set "n" ""; foreverypart { set "n" "${n}x"; } '
  'fileinto "n-${n}";', "multipart")
c("mime-anychild", MM + 'if header :mime :anychild :contenttype "content-type" "text/html" '
  '{ fileinto "HasHtml"; }', "multipart")
c("mime-anychild-miss", MM + 'if header :mime :anychild :contenttype "content-type" '
  '"image/png" { fileinto "Hit"; }', "multipart")
c("mime-top-level", MM + 'if header :mime :type "content-type" "multipart" { fileinto "Multi"; }',
  "multipart")
c("mime-top-level-no-content-type", MM + 'if header :mime :type "content-type" "text" '
  '{ fileinto "Hit"; }')
c("mime-not-mime-header", MM + 'if header :mime :type "subject" "" { fileinto "Empty"; }')
c("mime-exists", MM + 'foreverypart { if exists :mime "content-transfer-encoding" '
  '{ fileinto "Encoded"; } }', "multipart")
c("mime-exists-anychild", MM + 'if exists :mime :anychild "content-transfer-encoding" '
  '{ fileinto "Hit"; }', "multipart")
c("mime-address", MM + 'if address :mime :is "from" "sender@example.com" { fileinto "Hit"; }')
c("mime-param-missing", MM + 'if header :mime :param "nothere" :is "content-type" "" '
  '{ fileinto "Empty"; }', "multipart")
c("mime-params-parsed", MM + 'require ["relational", "comparator-i;ascii-numeric"]; '
  'if header :mime :param ["name", "x"] :count "eq" :comparator "i;ascii-numeric" '
  '"content-type" "3" { fileinto "Three"; }', "mimeparams")
err("mime-count-norequire", MM + 'if header :mime :param ["name", "x"] :count "eq" '
    '"content-type" "3" { fileinto "Three"; }', "mimeparams")
c("mime-param-continuation", MM + 'if header :mime :param "name" :matches "content-type" "*" '
  '{ fileinto "${1}"; }', "mimeparams")
c("mime-type-case-kept", MM + 'if header :mime :type :matches "content-type" "*" '
  '{ fileinto "${1}"; }', "mimeparams")
c("mime-disposition", MM + 'if header :mime :type :matches "content-disposition" "*" '
  '{ fileinto "d-${1}"; }', "mimeparams")
c("mime-disposition-subtype", MM + 'if header :mime :subtype "content-disposition" "" '
  '{ fileinto "Empty"; }', "mimeparams")
c("mime-disposition-param", MM + 'if header :mime :param "filename" :matches '
  '"content-disposition" "*" { fileinto "f-${1}"; }', "mimeparams")
c("mime-param-variable", MM + 'set "p" "charset"; foreverypart { if header :mime :param "${p}" '
  ':matches "content-type" "*" { fileinto "x${1}"; } }', "mimeparams")
c("mime-encoded-part-header", MM + 'foreverypart { if header :mime :contains "x-part" '
  '"Grüße" { fileinto "Decoded"; } }', "mimeparams")
err("mime-type-without-mime", MM + 'if header :type "content-type" "text" { keep; }')
err("mime-anychild-without-mime", MM + 'if header :anychild "content-type" "text" { keep; }')
err("mime-two-options", MM + 'if header :mime :type :subtype "content-type" "text" { keep; }')
err("mime-param-no-list", MM + 'if header :mime :param "content-type" "text" { keep; }')
err("mime-type-on-address", MM + 'if address :mime :type "from" "x" { keep; }')
err("mime-type-on-exists", MM + 'if exists :mime :type "content-type" { keep; }')
err("mime-norequire", 'require "foreverypart"; if header :mime "content-type" "x" { keep; }')
err("foreverypart-norequire", 'require "mime"; foreverypart { keep; }')
err("foreverypart-no-block", MM + "foreverypart;")
err("foreverypart-test", MM + "foreverypart true { keep; }")
err("foreverypart-name-number", MM + "foreverypart :name 1 { keep; }")
err("break-outside-loop", MM + "break;")
err("break-unknown-name", MM + 'foreverypart :name "a" { break :name "b"; }')
err("break-name-of-outer-missing", MM + 'foreverypart { break :name "x"; }')
c("break-name-inner", MM + 'foreverypart :name "a" { foreverypart :name "b" { break :name "a"; } }',
  "multipart")
c("foreverypart-depth-4", MM + "foreverypart { foreverypart { foreverypart { foreverypart "
  "{ keep; } } } }", "multipart")
err("foreverypart-depth-5", MM + "foreverypart { foreverypart { foreverypart { foreverypart "
    "{ foreverypart { keep; } } } } }", "multipart")
c("mime-with-index", 'require ["mime", "index", "foreverypart", "fileinto", "variables"]; '
  'foreverypart { if header :mime :index 1 :matches "content-type" "*" { fileinto "${1}"; } }',
  "multipart")
c("fileinto-empty-name", 'require "fileinto"; fileinto "";')
c("fileinto-empty-variable", 'require ["fileinto", "variables"]; set "x" ""; fileinto "${x}";')
