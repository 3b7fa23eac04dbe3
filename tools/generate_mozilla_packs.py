"""Write rules/mozilla-{modern,intermediate,old}.yaml from Mozilla's Server Side TLS guidelines JSON.

The packs are committed output: edit this generator or the data file (scanner/data/mozilla-server-side-tls-5.7.json,
see scanner/data/MOZILLA.md), never the YAML. tests/packs/test_mozilla.py regenerates into a temporary directory and
compares byte for byte, so packs and guidelines cannot drift apart.

    python tools/generate_mozilla_packs.py            # rewrite the three packs in rules/
    python tools/generate_mozilla_packs.py --check    # exit 1 if a committed pack differs from what it would write

Each rule is one field of one configuration of the JSON; its rule id is fixed per field (FIELD_NUMBERS: stable,
never reused) and its first reference is a JSON Pointer into the guidelines, so a finding names the exact value it
was judged by. Names are mapped from Mozilla's spelling to the one tlsgate's facts use (IANA group names,
cryptography's curve and signature names); an unknown name stops the generator instead of producing a rule that
could never match.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GUIDELINES = REPO / "scanner" / "data" / "mozilla-server-side-tls-5.7.json"
RULES_DIR = REPO / "rules"
PROFILES = ("modern", "intermediate", "old")
# Release date of guidelines 5.7: mozilla/ssl-config-generator, src/static/guidelines/CHANGELOG.md.
RELEASE_DATES = {5.7: "2023-05-15"}
WIKI = "https://wiki.mozilla.org/Security/Server_Side_TLS"
GENERATOR = "https://ssl-config.mozilla.org/"
# Where Mozilla's curve names (ANSI X9.62 / OpenSSL) meet the IANA / SECG names the facts use.
CURVE_NAMES = "https://www.rfc-editor.org/rfc/rfc8422#appendix-A"
# 1.0.1: each rule names its field of the guidelines in `section` (no verdict changed).
PACK_VERSION = "1.0.1"

# One rule id per JSON field, fixed forever (a field that is null in a configuration just has no rule there).
FIELD_NUMBERS = {
    "tls_versions": 1,
    "ciphersuites": 2,
    "ciphers.iana": 3,
    "tls_curves.tls13": 4,
    "tls_curves.tls12": 5,
    "certificate_types": 6,
    "certificate_curves": 7,
    "certificate_signatures": 8,
    "rsa_key_size": 9,
    "dh_param_size": 10,
    "maximum_certificate_lifespan": 11,
    "ocsp_staple": 12,
    "server_preferred_order": 13,
}

# Mozilla's spellings -> the values tlsgate's facts carry.
TLS_VERSIONS = {"SSLv3": "SSLv3", "TLSv1": "TLSv1.0", "TLSv1.1": "TLSv1.1", "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}
VERSION_WORDS = {
    "SSLv3": "SSL 3.0",
    "TLSv1.0": "TLS 1.0",
    "TLSv1.1": "TLS 1.1",
    "TLSv1.2": "TLS 1.2",
    "TLSv1.3": "TLS 1.3",
}
# tls_curves: ANSI X9.62 / OpenSSL names -> IANA TLS Supported Groups names (RFC 8422 appendix A, RFC 8446 4.2.7).
TLS_GROUPS = {
    "X25519": "x25519",
    "X448": "x448",
    "prime256v1": "secp256r1",
    "secp256r1": "secp256r1",
    "secp384r1": "secp384r1",
    "secp521r1": "secp521r1",
}
# certificate_curves: -> cryptography's curve names, which certificate facts use (public_key.curve).
CERT_CURVES = {"prime256v1": "secp256r1", "secp256r1": "secp256r1", "secp384r1": "secp384r1", "secp521r1": "secp521r1"}
# certificate_types: -> public_key.type of the certificate facts.
CERT_TYPES = {"ecdsa": "EC", "rsa": "RSA"}
TYPE_WORDS = {"EC": "ECDSA (EC)", "RSA": "RSA"}
# certificate_signatures: OpenSSL's names, which are also cryptography's (signature_algorithm of the facts).
SIGNATURES = {
    name: name
    for name in (
        "sha256WithRSAEncryption",
        "sha384WithRSAEncryption",
        "sha512WithRSAEncryption",
        "ecdsa-with-SHA256",
        "ecdsa-with-SHA384",
        "ecdsa-with-SHA512",
    )
}

NOT_CHECKED = (
    "Not checked, because a TLS handshake does not show it or it is not a requirement: hsts_min_age ({hsts} s) is "
    "an HTTP response header (Strict-Transport-Security), which tlsgate does not request; "
    "recommended_certificate_lifespan ({recommended} days) is a recommendation below the maximum that is checked; "
    "oldest_clients is informational. ecdh_param_size ({ecdh} bits) is not a rule of its own: every group tls_curves "
    "allows has at least that size, so the group rules enforce it. Every certificate the server serves for the name "
    "tlsgate sends (SNI) must meet the certificate rules (deployments: every): the guidelines name the certificate a "
    "server uses, and a second one of another type is outside them. Public trust of the "
    "certificate is not part of the guidelines; judge it with certificate.trust rules in another pack."
)


class GuidelineError(Exception):
    """The guidelines JSON holds something this generator cannot turn into a rule."""


def _map(table: dict[str, str], names: list[str], field: str) -> list[str]:
    unknown = [n for n in names if n not in table]
    if unknown:
        raise GuidelineError(f"{field}: no tlsgate name for {unknown}; extend the mapping in {Path(__file__).name}")
    mapped: list[str] = []
    for name in names:
        if table[name] not in mapped:
            mapped.append(table[name])
    return mapped


def _iana() -> Any:
    """tlsgate's copy of the IANA registries (scanner/probe/iana.py): the names its facts use."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from scanner.probe import iana  # noqa: PLC0415 - the repository's own module, importable once on the path

    return iana


@functools.cache
def _suite_kinds() -> dict[str, str]:
    """IANA cipher-suite name -> key exchange, as tlsgate's facts report it ('any' for TLS 1.3 suites)."""
    return {info.name: info.key_exchange for info in _iana().cipher_suites()}


def _check_groups(names: list[str]) -> None:
    unknown = [n for n in names if _iana().named_group_by_name(n) is None]
    if unknown:
        raise GuidelineError(f"tls_curves: {unknown} not in the IANA Supported Groups registry tlsgate carries")


def _check_suites(names: list[str], field: str, tls13: bool) -> None:
    kinds = _suite_kinds()
    unknown = [n for n in names if n not in kinds]
    if unknown:
        raise GuidelineError(f"{field}: not in the IANA registry tlsgate carries: {unknown}")
    wrong = [n for n in names if (kinds[n] == "any") != tls13]
    if wrong:
        raise GuidelineError(f"{field}: {wrong} {'are not' if tls13 else 'are'} TLS 1.3 suites")


# --- rules -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    field: str  # key of FIELD_NUMBERS
    pointer: str  # JSON Pointer of the value in the guidelines
    title: str
    severity: str
    fact: str
    constraint: tuple[str, Any]
    rationale: str
    remediation: str
    where: dict[str, Any] | None = None
    when: dict[str, Any] | None = None
    references: tuple[str, ...] = ()


def _rules(profile: str, config: dict[str, Any]) -> Iterator[Rule]:
    base = f"/configurations/{profile}"

    versions = _map(TLS_VERSIONS, config["tls_versions"], "tls_versions")
    said = _words([VERSION_WORDS[v] for v in versions])
    yield Rule(
        "tls_versions",
        f"{base}/tls_versions",
        f"No protocol version other than {said} is accepted",
        "high",
        "protocols",
        ("each", {"version": {"in": versions}}),
        f"The {profile} configuration allows {said} and no other protocol version; a version outside this list "
        "keeps weaker handshakes and record protection on the attack surface and opens the way to downgrades.",
        f"Enable only {said} (OpenSSL: MinProtocol/MaxProtocol; nginx: ssl_protocols "
        f"{' '.join(config['tls_versions'])};). The Mozilla SSL Configuration Generator ({GENERATOR}) writes this "
        "for common servers.",
        where={"status": "accepted"},
    )

    tls13_suites = list(config["ciphersuites"])
    _check_suites(tls13_suites, "ciphersuites", tls13=True)
    yield Rule(
        "ciphersuites",
        f"{base}/ciphersuites",
        "Only Mozilla's TLS 1.3 cipher suites are accepted",
        "high",
        "protocols.cipher_suites",
        ("each", {"name": {"in": tls13_suites}}),
        f"The {profile} configuration lists the TLS 1.3 suites a server may accept: {', '.join(tls13_suites)}. "
        "Others (CCM, CCM_8, integrity-only, national ciphers) are outside the configuration.",
        f"Restrict the TLS 1.3 suites (OpenSSL: Ciphersuites = {':'.join(tls13_suites)}; nginx: "
        f"ssl_conf_command Ciphersuites {':'.join(tls13_suites)};).",
        where={"key_exchange": "any"},
    )

    legacy_suites = list(config["ciphers"]["iana"])
    _check_suites(legacy_suites, "ciphers.iana", tls13=False)
    openssl = ":".join(config["ciphers"]["openssl"])
    yield Rule(
        "ciphers.iana",
        f"{base}/ciphers/iana",
        "Only Mozilla's TLS 1.2-and-older cipher suites are accepted"
        if legacy_suites
        else "No TLS 1.2-or-older cipher suite is accepted",
        "high",
        "protocols.cipher_suites",
        ("each", {"name": {"in": legacy_suites}}),
        (
            f"The {profile} configuration lists {len(legacy_suites)} suites for TLS 1.2 and older (the constraint "
            "above, in Mozilla's order); any other suite is outside the configuration."
            if legacy_suites
            else f"The {profile} configuration lists no suite before TLS 1.3: every accepted suite must be a TLS "
            "1.3 suite."
        ),
        (
            f"Set the cipher list to Mozilla's, in its order (nginx: ssl_ciphers; Apache: SSLCipherSuite; OpenSSL: "
            f"CipherString): {openssl}"
            if legacy_suites
            else "Disable TLS 1.2 and older, which removes their suites (nginx: ssl_protocols TLSv1.3;)."
        ),
        where={"key_exchange": {"not_equals": "any"}},
    )

    groups = _map(TLS_GROUPS, config["tls_curves"], "tls_curves")
    _check_groups(groups)
    openssl_groups = ":".join(config["tls_curves"])
    group_remedy = (
        f"Restrict the key-exchange groups (OpenSSL: Groups = {openssl_groups}; nginx: ssl_ecdh_curve "
        f"{openssl_groups};). Hybrid post-quantum groups such as X25519MLKEM768 are not in guidelines 5.7."
    )
    yield Rule(
        "tls_curves.tls13",
        f"{base}/tls_curves",
        f"TLS 1.3 key exchange uses only {_words(groups)}",
        "medium",
        "groups.tls13.name",
        ("only", groups),
        f"The {profile} configuration allows the key-exchange groups {_words(groups)}. In TLS 1.3 every group "
        "(elliptic curve, finite-field or hybrid) is negotiated from the same list, so any other group the server "
        "accepts is outside the configuration.",
        group_remedy,
        references=(CURVE_NAMES,),
    )
    yield Rule(
        "tls_curves.tls12",
        f"{base}/tls_curves",
        f"TLS 1.2 ECDHE uses only {_words(groups)}",
        "medium",
        "groups.tls12.name",
        ("only", groups),
        f"The {profile} configuration allows the ECDHE curves {_words(groups)}; a server that also accepts "
        "other curves (secp521r1, x448, brainpool, binary curves) is outside the configuration. Finite-field DHE "
        "is judged by the DH parameter rule.",
        group_remedy,
        references=(CURVE_NAMES,),
    )

    types = _map(CERT_TYPES, config["certificate_types"], "certificate_types")
    yield Rule(
        "certificate_types",
        f"{base}/certificate_types",
        f"The certificate key is {_either(types)}",
        "medium",
        "certificate.leaf.public_key.type",
        ("in", types),
        f"The {profile} configuration allows {_words([TYPE_WORDS[t] for t in types])} keys in server certificates "
        "and no other kind (DSA, EdDSA ...).",
        f"Deploy a certificate with an {_either([TYPE_WORDS[t] for t in types])} key.",
    )

    curves = _map(CERT_CURVES, config["certificate_curves"], "certificate_curves")
    yield Rule(
        "certificate_curves",
        f"{base}/certificate_curves",
        f"An EC certificate key is on {_either(curves)}",
        "medium",
        "certificate.leaf.public_key.curve",
        ("in", curves),
        f"The {profile} configuration allows elliptic-curve certificate keys on {_either(curves)} only.",
        f"Issue the certificate for a key on {_either(curves)} (openssl genpkey -algorithm EC -pkeyopt "
        f"ec_paramgen_curve:{config['certificate_curves'][0]}).",
        when={"fact": "certificate.leaf.public_key.type", "equals": "EC"},
        references=(CURVE_NAMES,),
    )

    signatures = _map(SIGNATURES, config["certificate_signatures"], "certificate_signatures")
    yield Rule(
        "certificate_signatures",
        f"{base}/certificate_signatures",
        "The certificate is signed with an allowed algorithm",
        "medium",
        "certificate.leaf.signature_algorithm",
        ("in", signatures),
        f"The {profile} configuration allows certificates signed with {_either(signatures)}.",
        "Have the certificate issued (or re-issued) with one of these signature algorithms.",
    )

    if config["rsa_key_size"] is not None:
        bits = int(config["rsa_key_size"])
        yield Rule(
            "rsa_key_size",
            f"{base}/rsa_key_size",
            f"An RSA certificate key has at least {bits} bits",
            "high",
            "certificate.leaf.public_key.size",
            ("min", bits),
            f"The {profile} configuration requires RSA keys of at least {bits} bits.",
            f"Issue the certificate for an RSA key of {bits} bits or more.",
            when={"fact": "certificate.leaf.public_key.type", "equals": "RSA"},
        )

    if config["dh_param_size"] is not None:
        bits = int(config["dh_param_size"])
        yield Rule(
            "dh_param_size",
            f"{base}/dh_param_size",
            f"DHE uses a prime of at least {bits} bits",
            "high",
            "groups.dh_parameter_bits",
            ("min", bits),
            f"The {profile} configuration requires finite-field Diffie-Hellman parameters of at least {bits} bits "
            "where DHE suites are accepted; smaller primes are within reach of precomputation (Logjam).",
            f"Configure DH parameters of {bits} bits or more, e.g. the RFC 7919 ffdhe{max(bits, 2048)} group "
            "(nginx: ssl_dhparam), or disable the DHE suites.",
            when={"fact": "protocols.cipher_suites", "some": {"key_exchange": "DHE"}},
            references=("https://www.rfc-editor.org/rfc/rfc7919", "https://weakdh.org/"),
        )

    days = int(config["maximum_certificate_lifespan"])
    yield Rule(
        "maximum_certificate_lifespan",
        f"{base}/maximum_certificate_lifespan",
        f"The certificate is valid for at most {days} days",
        "medium",
        "certificate.leaf.validity_days",
        ("max", days),
        f"The {profile} configuration limits the certificate lifespan (notBefore to notAfter) to {days} days"
        + (
            f" (and recommends {recommended})"
            if (recommended := config["recommended_certificate_lifespan"]) != days
            else ""
        )
        + ": short-lived certificates limit the damage of a key compromise and of a revocation that clients do "
        "not see.",
        f"Issue certificates valid for {days} days or less (ACME clients renew 90-day certificates automatically).",
    )

    if config["ocsp_staple"]:
        yield Rule(
            "ocsp_staple",
            f"{base}/ocsp_staple",
            "The server staples an OCSP response",
            "low",
            "behaviours.ocsp_stapling",
            ("equals", True),
            f"The {profile} configuration enables OCSP stapling: clients get fresh revocation status in the "
            "handshake without asking the CA, which is faster and does not tell the CA who visits.",
            "Enable OCSP stapling (nginx: ssl_stapling on; ssl_stapling_verify on; Apache: SSLUseStapling On) and "
            "make sure the server can reach the CA's OCSP responder.",
        )

    server_order = bool(config["server_preferred_order"])
    order = "server" if server_order else "client"
    yield Rule(
        "server_preferred_order",
        f"{base}/server_preferred_order",
        "The server enforces its own cipher-suite order"
        if server_order
        else "The server follows the client's cipher-suite order",
        "low",
        "protocols",
        ("each", {"cipher_order": order}),
        (
            f"The {profile} configuration accepts weak suites for old clients, so the server must choose by its own "
            "order (Mozilla's) for modern clients to get the strongest suite."
            if server_order
            else f"Every suite of the {profile} configuration is strong, so the server lets the client choose "
            "(e.g. ChaCha20 on devices without AES hardware). A version with a single accepted suite has no order "
            "and is not judged."
        ),
        (
            "Make the server prefer its own order (nginx: ssl_prefer_server_ciphers on; OpenSSL: Options = "
            "ServerPreference)."
            if server_order
            else "Let the client choose (nginx: ssl_prefer_server_ciphers off; OpenSSL: no ServerPreference option)."
        ),
        where={"status": "accepted", "cipher_order": {"exists": True}},
    )


def _words(items: list[str], conjunction: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


def _either(items: list[str]) -> str:
    return _words(items, "or")


# --- YAML ------------------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
_WIDTH = 118


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _folded(key: str, text: str, indent: int) -> list[str]:
    pad = " " * (indent + 2)
    lines = textwrap.wrap(text, width=_WIDTH - len(pad), break_long_words=False, break_on_hyphens=False)
    return [f"{' ' * indent}{key}: >", *(pad + line for line in lines)]


def _value(key: str, value: Any, indent: int) -> list[str]:
    """``key: value`` in flow style when it fits on a line, else a block list of flow items."""
    pad = " " * indent
    line = f"{pad}{key}: {_flow(value)}"
    if len(line) <= _WIDTH or not isinstance(value, list | dict):
        return [line]
    if isinstance(value, dict):
        out = [f"{pad}{key}:"]
        for k, v in value.items():
            out += _value(k, v, indent + 2)
        return out
    return [f"{pad}{key}:", *(f"{pad}  - {_flow(v)}" for v in value)]


def _rule_lines(rule_id: str, rule: Rule, href: str) -> list[str]:
    out = [f"  - id: {rule_id}"]
    out += _value("title", rule.title, 4)
    out.append(f"    severity: {rule.severity}")
    out.append(f"    fact: {rule.fact}")
    if rule.fact.startswith("certificate."):
        out.append("    deployments: every")  # see NOT_CHECKED: each certificate served must meet the guidelines
    if rule.where is not None:
        out += _value("where", rule.where, 4)
    if rule.when is not None:
        out += _value("when", rule.when, 4)
    out += _value(*rule.constraint, 4)
    out += _folded("rationale", rule.rationale, 4)
    out += _folded("remediation", rule.remediation, 4)
    out += _value("section", rule.pointer.replace("/", ".").strip("."), 4)
    out.append("    references:")
    for reference in (f"{href}#{rule.pointer}", WIKI, *rule.references):
        out.append(f"      - {_scalar(reference)}")
    return out


def render(profile: str, guidelines: dict[str, Any], source_name: str) -> str:
    """The YAML text of the pack for one configuration."""
    config = guidelines["configurations"][profile]
    version = guidelines["version"]
    href = guidelines["href"]
    date = RELEASE_DATES.get(version)
    if date is None:
        raise GuidelineError(f"no release date known for guidelines {version}; add it to RELEASE_DATES")
    pack_id = f"mozilla-{profile}"
    prefix = f"MOZILLA-{profile.upper()}"
    note = NOT_CHECKED.format(
        hsts=config["hsts_min_age"],
        recommended=config["recommended_certificate_lifespan"],
        ecdh=config["ecdh_param_size"],
    )
    description = (
        f"Mozilla's '{profile}' server configuration (Server Side TLS guidelines {version}), one rule per field of "
        f"the guidelines' JSON: protocol versions, cipher suites, key-exchange groups, the certificate's key type, "
        f"curve, size, signature and lifespan, DH parameter size, OCSP stapling and cipher-suite order. Oldest "
        f"clients served: {', '.join(config['oldest_clients'])}."
    )
    out = [
        f"# GENERATED by tools/generate_mozilla_packs.py from {source_name} -- do not edit.",
        "# Change the generator or the data file and run: python tools/generate_mozilla_packs.py",
        f"id: {pack_id}",
        f"title: {_scalar(f'Mozilla Server Side TLS {version}, {profile} configuration')}",
        f'version: "{PACK_VERSION}"',
        "source:",
        *_value("document", f"Mozilla Server Side TLS guidelines, version {version} (JSON)", 2),
        *_value("section", f"configurations.{profile}", 2),
        *_value("url", href, 2),
        *_value("date", date, 2),
        *_folded("note", note, 2),
        *_folded("description", description, 0),
        "rules:",
    ]
    for rule in _rules(profile, config):
        out += _rule_lines(f"{prefix}-{FIELD_NUMBERS[rule.field]:03d}", rule, href)
    return "\n".join(out) + "\n"


def generate(guidelines_path: Path = GUIDELINES) -> dict[str, str]:
    """File name -> YAML text, for the three configurations."""
    guidelines = json.loads(guidelines_path.read_text(encoding="utf-8"))
    try:
        source_name = guidelines_path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        source_name = guidelines_path.name
    return {f"mozilla-{p}.yaml": render(p, guidelines, source_name) for p in PROFILES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guidelines", type=Path, default=GUIDELINES, help="the guidelines JSON")
    parser.add_argument("--out", type=Path, default=RULES_DIR, help="directory to write the packs to")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a pack in --out differs")
    args = parser.parse_args(argv)
    try:
        packs = generate(args.guidelines)
    except GuidelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = []
    for name, text in packs.items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date (run {Path(__file__).name}): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
