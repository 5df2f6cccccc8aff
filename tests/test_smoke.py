from tests.conftest import lmtp_send


def test_delivery_lands_in_new(lmtpd):
    result = lmtp_send(lmtpd.socket_path, "s@x.org", ["alice@example.org"],
                       b"Subject: hi\r\n\r\nhello\r\n")
    assert result["alice@example.org"][0] == 250
    files = list((lmtpd.maildir("alice@example.org") / "new").iterdir())
    assert len(files) == 1
