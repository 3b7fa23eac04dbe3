"""Tests of scanner/render: every report format, written atomically, and the page in a real browser."""
