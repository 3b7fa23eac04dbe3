"""DN patterns for "peer name" policies: CN=*.partner.example, O=Partner Ltd."""

from __future__ import annotations

import pytest

from scanner.policy.operators import VALUE_OPERATORS, dn_matches, split_dn


@pytest.mark.parametrize(
    ("dn", "pattern", "expected"),
    [
        ("CN=api.partner.example,O=Partner Ltd,C=GB", "CN=*.partner.example, O=Partner Ltd", True),
        ("CN=api.partner.example,O=partner ltd", "CN=*.partner.example, O=Partner Ltd", True),  # case-insensitive
        ("CN=api.evil.example,O=Partner Ltd", "CN=*.partner.example, O=Partner Ltd", False),
        ("CN=api.partner.example", "CN=*.partner.example, O=Partner Ltd", False),  # O missing
        ("CN=x,O=Müller\\, Schmidt & Co,C=DE", "O=Müller\\, Schmidt*", True),  # escaped comma
        ("CN=x,OU=Payments+OU=Ops,O=Bank", "OU=Ops", True),  # multi-valued RDN
        ("CN=x", "serialNumber=42", False),
    ],
)
def test_dn_matches(dn, pattern, expected):
    """Every attribute of the pattern must match (glob, case-insensitive) a value of that attribute."""
    assert dn_matches(dn, pattern) is expected


def test_split_dn_escapes():
    """Backslash-escaped commas stay inside the value; attribute names are upper-cased."""
    assert split_dn("cn=a\\,b,O=Partner Ltd") == [("CN", "a,b"), ("O", "Partner Ltd")]


@pytest.mark.parametrize("pattern", ["", "no equals sign", 42])
def test_bad_patterns_are_rejected_at_load(pattern):
    """A pattern that names no ATTRIBUTE=value is a pack error, not a rule that never matches."""
    assert VALUE_OPERATORS["dn_matches"].check_arg(pattern) is not None
