"""Test messages shared by the Sieve tests (LF line ends, as sieve-test reads files)."""

from __future__ import annotations

PLAIN = b"""Return-Path: <sender@example.com>
From: Sender Person <sender@example.com>
To: User <user@example.org>
Subject: Meeting on Friday
Date: Mon, 06 May 2024 10:00:00 +0200
Message-ID: <plain-1@example.com>
X-Priority: 3

Hello,

can we meet on Friday at 10?

Sender
"""

LIST = b"""From: "Guido" <guido@python.org>
To: python-list@python.org
Cc: User <user@example.org>
Subject: [Python] Release 3.13 is out
List-Id: General Python discussion <python-list.python.org>
List-Post: <mailto:python-list@python.org>
Precedence: list
Sender: python-list-bounces+user=example.org@python.org
Message-ID: <list-1@python.org>

The release is out.
"""

ENCODED = """From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.de>
To: =?ISO-8859-1?Q?Andr=E9?= <user@example.org>
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?= =?ISO-8859-1?Q?_und_K=F6ln?=
X-Mixed: plain =?UTF-8?Q?caf=C3=A9?= text
X-Raw-Utf8: Ärger im Büro
Message-ID: <enc-1@example.de>

Hallo!
""".encode()

ADDRESSES = b"""From: "Smith, John (Sales)" <John.Smith+sales@Example.COM> (work)
To: undisclosed-recipients:;
Cc: team: alice@example.org, "Bob B." <bob@example.net>;, carol@example.org (Carol)
Bcc: user+lists@example.org
Reply-To: <@route.example:reply@example.com>
Sender: root
Resent-From: <<<garbage @@ here
Delivered-To: user+box@example.org
Subject: address torture
Message-ID: <addr-1@example.com>

body
"""

FOLDED = b"""From: sender@example.com
To: user@example.org,
 second@example.org
Subject: This subject is folded
   over two lines
X-Long: one
\ttwo
X-Multi: first
X-Multi: second
X-Empty:
X-Spaces:    padded value\x20\x20\x20
Message-ID: <fold-1@example.com>

short body
"""

MULTIPART = b"""From: sender@example.com
To: user@example.org
Subject: newsletter with parts
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"
Message-ID: <mp-1@example.com>

This is the prologue of the outer part.
--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Special offer: caf=C3=A9 for everyone. Unsubscribe here.
--inner
Content-Type: text/html; charset=utf-8

<html><body><p>Special <b>offer</b>: caf\xc3\xa9</p></body></html>
--inner--
--outer
Content-Type: application/octet-stream; name="data.bin"
Content-Transfer-Encoding: base64

U2VjcmV0UGF5bG9hZCBpbiBhdHRhY2htZW50
--outer--
This is the epilogue.
"""

SPAM = b"""From: winner@lottery.example
To: user@example.org
Subject: ***SPAM*** You have WON
X-Spam-Flag: YES
X-Spam-Score: 7.5
X-Spam-Level: *******
Message-ID: <spam-1@lottery.example>

Claim your prize.
"""

AUTO = b"""From: robot@example.com
To: user@example.org
Subject: Out of office
Auto-Submitted: auto-replied
Message-ID: <auto-1@example.com>

I am away.
"""

BULK = b"""From: news@shop.example
To: user@example.org
Subject: Weekly deals
Precedence: bulk
Message-ID: <bulk-1@shop.example>

Deals.
"""

NOSUBJECT = b"""From: sender@example.com
To: user@example.org
Message-ID: <nosub-1@example.com>

no subject here
"""

CCONLY = b"""From: sender@example.com
To: someone-else@example.net
Cc: USER@Example.ORG
Subject: cc only
Message-ID: <cc-1@example.com>

cc
"""

NOTME = b"""From: sender@example.com
To: someone-else@example.net
Subject: not for me
Message-ID: <notme-1@example.com>

bcc'd
"""

ALIAS = b"""From: sender@example.com
To: info@example.org
Subject: to an alias
Message-ID: <alias-1@example.com>

alias
"""

AUTONO = b"""From: sender@example.com
To: user@example.org
Subject: manual
Auto-Submitted: no
Message-ID: <autono-1@example.com>

manual
"""

BIG = (
    (
        b"From: sender@example.com\nTo: user@example.org\nSubject: big one\n"
        b"Message-ID: <big-1@example.com>\n\n" + b"x" * 75 + b"\n"
    )
    + b"y" * 75 * 40
    + b"\n"
)

MESSAGES: dict[str, bytes] = {
    "plain": PLAIN,
    "list": LIST,
    "encoded": ENCODED,
    "addresses": ADDRESSES,
    "folded": FOLDED,
    "multipart": MULTIPART,
    "spam": SPAM,
    "auto": AUTO,
    "bulk": BULK,
    "nosubject": NOSUBJECT,
    "cconly": CCONLY,
    "notme": NOTME,
    "alias": ALIAS,
    "autono": AUTONO,
    "big": BIG,
}

ODD = b"""From: =?UTF-8?Q?Doe,_J?= <j@example.com>
To: "user@example.org" <other@example.net>
Cc: =?utf-8?q?broken word
Reply-To: a@example.com,
  b@example.com
Subject: =?UTF-8?B?invalid!!?= and =?x-unknown?Q?abc?=
X-Tab:\tvalue\twith\ttabs
X-8bit: caf\xc3\xa9 cr\xc3\xa8me
Message-ID: <odd-1@example.com>

odd
"""
MESSAGES["odd"] = ODD

MESSAGES["nomsgid"] = b"""From: sender@example.com
To: user@example.org
Subject: no message id

body
"""

MESSAGES["dated"] = b"""Received: from relay.example.net by mx.example.org;
 Tue, 31 Dec 2024 23:30:05 -0800
Received: from client.example.com by relay.example.net; Tue, 31 Dec 2024 22:59:59 -0900 (AKST)
Received: no date here
Date: Wed, 1 Jan 2025 07:15:00 +0530
Resent-Date: 29 Feb 2024 12:00 GMT
X-Bad-Date: yesterday at noon
X-Count: 10
X-Count: 9
X-Count: 100
From: sender@example.com
To: user@example.org
Subject: dates
Message-ID: <dated-1@example.com>

body
"""

MESSAGES["crlf"] = (
    b"From: sender@example.com\r\nTo: user@example.org\r\nSubject: crlf message\r\n"
    b"Message-ID: <crlf-1@example.com>\r\n\r\nbody line\r\n"
)

MESSAGES["mimeparams"] = b"""From: sender@example.com
To: user@example.org
Subject: parameters
MIME-Version: 1.0
Content-Type: Multipart/Mixed ; boundary="b1"; name*0="a b"; name*1=c; x=1; X=2
Content-Disposition: Inline; filename=whole.txt
Message-ID: <params-1@example.com>

--b1
Content-Type: text/plain; charset=ISO-8859-1
X-Part: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=

hello
--b1--
"""
