"""`tlsgate watch`: scheduled scans of an inventory, stored, turned into notifications (docs/watch.md)."""
