"""Reaching a target: its endpoint, the preflight, STARTTLS upgrades, connection limits, client credentials."""
