"""Tests of scanner/policy and the gate: rule packs, the engine, waivers, baselines and exit codes."""
