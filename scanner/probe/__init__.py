"""The probe stage: the only code that talks to the network.

``run.probe_targets`` drives a scan through the ``registry`` of probe kinds. ``connect`` reaches a target
(preflight, STARTTLS, limits); ``checks`` are tlsgate's own probes; ``pki`` judges the served certificates;
``wire`` is the one TLS/DER codec; the ``sslyze_adapter`` is the one module that knows sslyze.
"""
