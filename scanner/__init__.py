"""tlsgate: a remote TLS endpoint compliance scanner with declarative rule packs."""

__version__ = "0.1.0"
