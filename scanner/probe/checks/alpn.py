"""Which ALPN protocols a server selects: offer a list, note the pick, offer the rest, until it picks nothing.

A server selects one protocol per handshake, by its own preference; taking each pick out of the next offer
enumerates every protocol the server supports among our candidates, its preferred one first.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

from scanner.facts import ErrorClass, Observed, observed, unobserved
from scanner.probe.connect.endpoint import Endpoint
from scanner.probe.connect.starttls import StartTlsError
from scanner.probe.connect.tlsclient import SOURCE, client_context, handshake_error, ssl_reason, tls_connect

# IANA "TLS Application-Layer Protocol Negotiation (ALPN) Protocol IDs", the ones a TLS-over-TCP server can
# select (no QUIC- or DTLS-only ids except h3 and doq, which a misconfigured TCP server might still pick).
DEFAULT_ALPN: tuple[str, ...] = (
    "h2",
    "http/1.1",
    "http/1.0",
    "http/0.9",
    "spdy/3",
    "spdy/2",
    "spdy/1",
    "h3",
    "h2c",
    "mqtt",
    "imap",
    "pop3",
    "managesieve",
    "ftp",
    "xmpp-client",
    "xmpp-server",
    "acme-tls/1",
    "postgresql",
    "smb",
    "irc",
    "nntp",
    "nnsp",
    "dot",
    "doq",
    "ntske/1",
    "sunrpc",
    "sip/2",
    "tds/8.0",
    "dicom",
    "coap",
    "stun.turn",
    "stun.nat-discovery",
    "webrtc",
    "c-webrtc",
    "radius/1.0",
    "radius/1.1",
)

# The alert a server sends when it supports ALPN but none of the offered protocols (RFC 7301 section 3.2).
_NO_APPLICATION_PROTOCOL = "TLSV1_ALERT_NO_APPLICATION_PROTOCOL"


def probe_alpn(endpoint: Endpoint, candidates: Sequence[str] = DEFAULT_ALPN) -> Observed[list[str]]:
    """The candidates the server selects, its preferred first; ``[]`` when it ignores ALPN (or supports none of
    them). An error when a handshake fails for any other reason than "none of these": the list would be
    incomplete."""
    remaining = list(dict.fromkeys(candidates))
    if not remaining:
        raise ValueError("no ALPN candidates to offer")
    selected: list[str] = []
    while remaining:
        what = f"ALPN offer {len(selected) + 1}"
        try:
            context = client_context(endpoint)
            context.set_alpn_protocols(remaining)
        except OSError as exc:
            return unobserved(ErrorClass.probe_failed, f"{what}: cannot set up the client: {ssl_reason(exc)}", SOURCE)
        try:
            with tls_connect(endpoint, context) as tls:
                chosen = tls.selected_alpn_protocol()
        except ssl.SSLError as exc:
            if ssl_reason(exc) == _NO_APPLICATION_PROTOCOL:
                break  # "none of these" said with an alert
            problem = handshake_error(endpoint, what, exc)
            return unobserved(problem.error_class, problem.message, SOURCE)
        except (OSError, StartTlsError) as exc:
            problem = handshake_error(endpoint, what, exc)
            return unobserved(problem.error_class, problem.message, SOURCE)
        if chosen is None:
            break
        selected.append(chosen)
        if chosen not in remaining:
            break  # the server picked something we did not offer; offering less would not stop it
        remaining.remove(chosen)
    return observed(selected, SOURCE)
