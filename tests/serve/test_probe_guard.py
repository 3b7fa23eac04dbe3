"""The /probe guard without a network: the --allow list, what a request may name, and the scan's budget."""

from __future__ import annotations

import re

import pytest

from scanner.policy.pack import resolve_pack
from scanner.serve.probe import Allowed, Prober, ProbeRefused, ProbeSettings


@pytest.fixture(scope="module")
def essentials():
    return resolve_pack("essentials")


def _prober(essentials, allow: list[str], resolved: dict[str, list[str]] | None = None) -> Prober:
    def resolver(host: str, port: int) -> list[str]:
        if resolved is None or host not in resolved:
            raise OSError("Name or service not known")
        return resolved[host]

    settings = ProbeSettings(packs={essentials.id: essentials}, allowed=Allowed.parse(allow), probe_time=20)
    return Prober(settings, resolver)


def test_allow_entries() -> None:
    allowed = Allowed.parse(["10.0.0.0/8, ::1", "db.internal.", "*.example.net", "192.0.2.7"])
    assert [str(n) for n in allowed.networks] == ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]
    assert allowed.names == ("db.internal", "*.example.net")
    assert allowed.permits_address("10.200.1.1") and allowed.permits_address("::1")
    assert allowed.permits_address("::ffff:10.0.0.1")  # the IPv4-mapped form is the same host
    assert not allowed.permits_address("11.0.0.1") and not allowed.permits_address("192.0.2.8")
    assert allowed.permits_name("DB.internal") and allowed.permits_name("www.example.net")
    assert not allowed.permits_name("example.net") and not allowed.permits_name("evilexample.net")
    for bad in ("http://x", "a b", "10.0.0.0/33x", "*"):
        with pytest.raises(ValueError, match="--allow"):
            Allowed.parse([bad])


def test_nothing_is_allowed_by_default(essentials) -> None:
    prober = _prober(essentials, [])
    target, _ = prober.check("127.0.0.1:443", None)
    with pytest.raises(ProbeRefused, match="probing is off") as caught:
        prober.permit(target)
    assert caught.value.status == 403


def test_a_name_must_resolve_inside_the_allowed_networks(essentials) -> None:
    """Every address a name resolves to must be allowed (one outside is refused), and the scan is pinned to the
    address checked; a name allowed by name is left to resolve at scan time."""
    resolved = {"mixed.test": ["10.1.1.1", "169.254.169.254"], "inside.test": ["10.1.1.2", "10.1.1.3"]}
    prober = _prober(essentials, ["10.0.0.0/8", "*.named.test"], resolved)
    with pytest.raises(ProbeRefused, match=re.escape("169.254.169.254, not in the --allow list")) as caught:
        prober.permit(prober.check("mixed.test:443", None)[0])
    assert caught.value.status == 403
    assert prober.permit(prober.check("inside.test:8443", None)[0]) == "10.1.1.2"
    assert prober.permit(prober.check("www.named.test:443", None)[0]) is None
    with pytest.raises(ProbeRefused, match="cannot resolve") as caught:
        prober.permit(prober.check("nowhere.test:443", None)[0])
    assert caught.value.status == 400
    with pytest.raises(ProbeRefused, match="not in the --allow list"):
        prober.permit(prober.check("[fe80::1]:443", None)[0])


@pytest.mark.parametrize(
    ("target", "pack", "message"),
    [
        (None, None, "missing target"),
        ("", None, "missing target"),
        ("a b:443", None, "bad target"),
        ("host:99999", None, "out of range"),
        ("ftp://host", None, "unsupported scheme"),
        ("127.0.0.1:443", "../../etc/passwd", "unknown pack '../../etc/passwd': this server scans with essentials"),
    ],
)
def test_bad_requests_are_400_with_one_line(essentials, target, pack, message) -> None:
    prober = _prober(essentials, ["127.0.0.1"])
    with pytest.raises(ProbeRefused, match=message) as caught:
        prober.probe(target, pack)
    assert caught.value.status == 400
    assert "\n" not in str(caught.value)


def test_the_budget_fits_the_scrape_timeout(essentials) -> None:
    prober = _prober(essentials, ["127.0.0.1"])
    assert prober.budget(None) == 20
    assert prober.budget(10) == 9.5  # half a second left to answer
    assert prober.budget(0.2) == 1.0  # never less than a second
    assert prober.budget(60) == 20
