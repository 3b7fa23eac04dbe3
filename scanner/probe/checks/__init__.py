"""tlsgate's own probes of a TLS server: suites, SSL 2.0, groups, sessions, ALPN, client authentication."""
