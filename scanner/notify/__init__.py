"""Notifications on events, not on every scan: events derived from two reports (``events``), the state that makes
each one go out once (``state``), the channels that carry them (``channels``) and the routing file (``config``)."""
