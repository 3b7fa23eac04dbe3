"""The one TLS wire codec: records, handshake messages, DER names, the TLS 1.3 key schedule."""
