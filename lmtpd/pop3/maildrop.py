"""The TRANSACTION state of a POP3 session (RFC 1939 §5): the messages listed at login, the
ones marked for deletion, and the commands that read and mark them. No I/O."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lmtpd.pop3.wire import Event, MessageInfo, Retrieve, Send, multiline, ok


class Maildrop:
    """`error` makes a -ERR that counts towards the session's error limit."""

    def __init__(self, messages: Sequence[MessageInfo], error: Callable[[str], Send]) -> None:
        self.messages = list(messages)
        self.deleted: set[int] = set()
        self._error = error
        self.commands: dict[str, Callable[[bytes], Event]] = {
            "STAT": self._stat, "LIST": self._list, "UIDL": self._uidl, "RETR": self._retr,
            "TOP": self._top, "DELE": self._dele, "RSET": self._rset, "NOOP": self._noop,
        }

    def totals(self) -> tuple[int, int]:
        count = size = 0
        for number, message in enumerate(self.messages, 1):
            if number not in self.deleted:
                count += 1
                size += message.size
        return count, size

    def _message_number(self, text: bytes) -> int | Send:
        if not text.isdigit() or len(text) > 10:
            return self._error("Invalid message number.")
        number = int(text)
        if not 1 <= number <= len(self.messages):
            return self._error("No such message.")
        if number in self.deleted:
            return self._error("Message is deleted.")
        return number

    def _stat(self, rest: bytes) -> Send:
        if rest.strip():
            return self._error("STAT takes no argument.")
        count, size = self.totals()
        return Send(ok(f"{count} {size}"))

    def _listing(self, rest: bytes, value: str) -> Send:
        args = rest.split()
        if len(args) > 1:
            return self._error("Too many arguments.")
        if args:
            number = self._message_number(args[0])
            if isinstance(number, Send):
                return number
            message = self.messages[number - 1]
            return Send(ok(f"{number} {getattr(message, value)}"))
        lines = [f"{n} {getattr(m, value)}" for n, m in enumerate(self.messages, 1)
                 if n not in self.deleted]
        if value == "size":
            count, size = self.totals()
            first = ok(f"{count} messages ({size} octets)")
        else:
            first = ok("Unique-ID listing follows.")
        return Send(multiline(first, lines))

    def _list(self, rest: bytes) -> Send:
        return self._listing(rest, "size")

    def _uidl(self, rest: bytes) -> Send:
        return self._listing(rest, "uidl")

    def _retr(self, rest: bytes) -> Event:
        args = rest.split()
        if len(args) != 1:
            return self._error("Syntax: RETR msg")
        number = self._message_number(args[0])
        if isinstance(number, Send):
            return number
        size = self.messages[number - 1].size
        return Retrieve(number, None, ok(f"{size} octets"))

    def _top(self, rest: bytes) -> Event:
        args = rest.split()
        if len(args) != 2:
            return self._error("Syntax: TOP msg n")
        number = self._message_number(args[0])
        if isinstance(number, Send):
            return number
        if not args[1].isdigit() or len(args[1]) > 10:
            return self._error("Invalid line count.")
        return Retrieve(number, int(args[1]), ok("Top of message follows."))

    def _dele(self, rest: bytes) -> Send:
        args = rest.split()
        if len(args) != 1:
            return self._error("Syntax: DELE msg")
        number = self._message_number(args[0])
        if isinstance(number, Send):
            return number
        self.deleted.add(number)
        return Send(ok("Marked to be deleted."))

    def _rset(self, rest: bytes) -> Send:
        if rest.strip():
            return self._error("RSET takes no argument.")
        self.deleted.clear()
        count, size = self.totals()
        return Send(ok(f"{count} messages ({size} octets)."))

    def _noop(self, rest: bytes) -> Send:
        if rest.strip():
            return self._error("NOOP takes no argument.")
        return Send(ok())
