"""Which plain-text protocol a port speaks, from what it said to a ClientHello: the hint that names the
``--starttls`` value to scan it with.

Mail, chat and directory servers greet (or answer garbage) in their own protocol before any TLS; a user who
scanned ``mail.example:25`` without ``--starttls smtp`` should be told so, not just "does not speak TLS".
"""

from __future__ import annotations

import re

from scanner.probe.connect.starttls import StartTls

# SMTP (RFC 5321 4.2) and FTP (RFC 959 4.2) both greet with "220 "; the rest of the line usually says which.
_FTP_WORDS = re.compile(rb"\bftp|filezilla|pure-ftpd|proftpd|vsftpd", re.IGNORECASE)
_SMTP_WORDS = re.compile(rb"smtp|\bmail|postfix|exim|sendmail", re.IGNORECASE)
# An LDAP server answering bytes it cannot decode sends a Notice of Disconnection (RFC 4511 4.4.1), whose
# responseName is this OID in text; LDAP says nothing else a scanner could read.
_LDAP_NOTICE_OF_DISCONNECTION = b"1.3.6.1.4.1.1466.20036"


_NAMES = {
    StartTls.smtp: "SMTP",
    StartTls.imap: "IMAP",
    StartTls.pop3: "POP3",
    StartTls.ftp: "FTP",
    StartTls.xmpp: "XMPP",
    StartTls.xmpp_server: "XMPP",
    StartTls.ldap: "LDAP",
    StartTls.postgres: "PostgreSQL",
}


def _options(*protocols: StartTls) -> str:
    return " or ".join(f"--starttls {p.value}" for p in protocols)


def starttls_protocols(preview: bytes) -> tuple[StartTls, ...]:
    """The STARTTLS protocols whose greeting ``preview`` (the first bytes the server sent) looks like; empty when
    none (HTTP, binary, silence)."""
    if preview.startswith((b"220 ", b"220-")):
        first_line = preview.split(b"\n", 1)[0]
        ftp, smtp = bool(_FTP_WORDS.search(first_line)), bool(_SMTP_WORDS.search(first_line))
        if ftp != smtp:
            return (StartTls.ftp,) if ftp else (StartTls.smtp,)
        return (StartTls.smtp, StartTls.ftp)
    if preview.startswith(b"* OK"):
        return (StartTls.imap,)
    if preview.startswith(b"+OK"):
        return (StartTls.pop3,)
    if preview.lstrip().startswith((b"<?xml", b"<stream:stream")):
        # A client-to-server and a server-to-server stream greet alike.
        return (StartTls.xmpp, StartTls.xmpp_server)
    if preview.startswith(b"\x30") and _LDAP_NOTICE_OF_DISCONNECTION in preview:
        return (StartTls.ldap,)
    return ()


def starttls_hint(preview: bytes) -> str | None:
    """A sentence naming the ``--starttls`` value(s) to use, or None when the greeting is none we know."""
    protocols = starttls_protocols(preview)
    if not protocols:
        return None
    names = " or ".join(dict.fromkeys(_NAMES[p] for p in protocols))
    return f"that is a {names} greeting: scan it with {_options(*protocols)}"
