"""The probe stage: the only code that talks to the network.

``run.probe_targets`` drives a scan; ``preflight`` decides whether a TLS peer is there at all; the
``sslyze_adapter`` is the one module that knows sslyze; the other modules are tlsgate's own probes.
"""
