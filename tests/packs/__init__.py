"""The built-in rule packs, each judged case by case through one harness (harness.py), then on loopback."""
