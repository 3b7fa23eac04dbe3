"""The letter grade of a target, worked out from its facts alone by the Qualys SSL Labs *SSL Server Rating Guide*.

The guide (version 2009, revisions c to q) scores three categories and combines them 30/30/40 into a number from 0
to 100, turns the number into a letter, then applies rules ("caps") that cap the letter for features a score cannot
express; an untrusted certificate gives T and a name mismatch M instead of a letter. Every table and cap below names
the document, revision, section and date it follows; docs/grade.md lists them with what we could not follow (what
tlsgate does not observe: HSTS for A+, browser handshake simulation, some vulnerabilities).

Nothing here looks at the network, at packs or at the gate: ``grade(facts)`` is a pure function, so ``evaluate`` and
``report render`` grade saved facts exactly as ``scan`` graded fresh ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from scanner.facts import CipherSuite, Facts, ProtocolVersion, PublicKey

# --- the sources ------------------------------------------------------------------------------------------

GUIDE = "SSL Server Rating Guide"
GUIDE_VERSION = "2009q (31 January 2020)"
# The text of revision 2009k as Qualys published it in docbook, and the wiki that carries revisions 2009l to 2009q.
GUIDE_2009K = (
    "SSL Server Rating Guide 2009k (14 October 2015), github.com/ssllabs/research docs/SSL_Server_Rating_Guide.xml"
)
GUIDE_WIKI = "SSL Server Rating Guide 2009q (31 January 2020), github.com/ssllabs/research/wiki/SSL-Server-Rating-Guide"
BLOG_2017 = "Qualys blog, 'SSL Labs Grading Changes January 2017' (18 January 2017; in force 3 April 2017)"
BLOG_2018 = (
    "Qualys blog, 'SSL Labs Grading Update: Forward Secrecy, Authenticated Encryption and ROBOT' "
    "(2 February 2018; in force 1 March 2018)"
)
BLOG_2020 = (
    "Qualys blog, 'SSL Labs Grade Change for TLS 1.0 and TLS 1.1 Protocols' (19 November 2018; in force 31 January "
    "2020), rating guide revision 2009q"
)

Letter = Literal["A+", "A", "A-", "B", "C", "D", "E", "F"]
Grade = Literal["A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M"]

# Best first: what --min-grade compares. T and M are outside the order (docs/grade.md): they fail any --min-grade.
LETTERS: tuple[Letter, ...] = ("A+", "A", "A-", "B", "C", "D", "E", "F")
GRADES: tuple[Grade, ...] = (*LETTERS, "T", "M")
_RANK = {letter: rank for rank, letter in enumerate(LETTERS)}


def parse_grade(text: str) -> Letter | None:
    """``a-``, `` B `` -> the letter; None for text that is not one of A+ ... F (T and M are no threshold)."""
    name = text.strip().upper()
    return next((letter for letter in LETTERS if letter == name), None)


def meets(grade: str | None, minimum: str) -> bool:
    """Whether ``grade`` is ``minimum`` or better; T, M and an unknown grade meet no minimum."""
    if grade not in _RANK or minimum not in _RANK:
        return False
    return _RANK[grade] <= _RANK[minimum]


# --- the model --------------------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GradeCap(_Frozen):
    """One rule of the guide that limited the grade (or replaced it, for T and M)."""

    grade: Grade = Field(description="The best grade the rule allows: F, E ... A-; T or M replace the letter.")
    rule: str = Field(description="Stable name of the rule, e.g. tls10-tls11, no-forward-secrecy, rc4.")
    reason: str = Field(description="What in the facts set it off.")
    source: str = Field(description="The document, revision and section the rule comes from.")


class Grading(_Frozen):
    """How a target's grade was worked out: the three category scores, the number, the caps and what was not judged."""

    grade: Grade = Field(description="The final grade: A+ ... F, T (certificate not trusted), M (name mismatch).")
    score: int = Field(description="0-100: protocol 30%, key exchange 30%, cipher strength 40% (0 if any is 0).")
    score_grade: Letter = Field(description="The letter the score alone gives (guide, Table 1).")
    protocol_score: int = Field(description="Protocol support: (best + worst accepted version) / 2.")
    key_exchange_score: int = Field(description="Key exchange: the weakest key exchange any accepted suite uses.")
    cipher_score: int = Field(description="Cipher strength: (strongest + weakest accepted cipher) / 2.")
    caps: list[GradeCap] = Field(default_factory=list, description="Every rule that applied, the limiting one first.")
    warnings: list[str] = Field(
        default_factory=list, description="What the guide would judge and these facts cannot tell (docs/grade.md)."
    )
    guide: str = Field(default=f"{GUIDE} {GUIDE_VERSION}", description="The rating guide the grade follows.")


# --- the tables (guide 2009k, section "Scoring"; unchanged through 2009q) -----------------------------------

# Table 2 "Criteria categories": the weight of each category, in tenths (integers: 0.3 * 95 is not 28.5 in floats).
WEIGHTS = {"protocol": 3, "key_exchange": 3, "cipher": 4}

# Table 3 "Protocol support rating guide". TLS 1.3 postdates the table; SSL Labs scores it 100 like TLS 1.2 (our
# reading: docs/grade.md).
PROTOCOL_SCORES: dict[ProtocolVersion, int] = {
    ProtocolVersion.SSLv2: 0,
    ProtocolVersion.SSLv3: 80,
    ProtocolVersion.TLSv1_0: 90,
    ProtocolVersion.TLSv1_1: 95,
    ProtocolVersion.TLSv1_2: 100,
    ProtocolVersion.TLSv1_3: 100,
}

# Table 4 "Key exchange rating guide": (strength below which, score), checked in order; anonymous 0, export 40.
KEY_EXCHANGE_SCORES: tuple[tuple[int, int], ...] = ((512, 20), (1024, 40), (2048, 80), (4096, 90))
KEY_EXCHANGE_TOP = 100
ANONYMOUS_SCORE = 0
EXPORT_SCORE = 40

# Table 5 "Cipher strength rating guide": (key bits below which, score); 0 bits (no encryption) scores 0.
CIPHER_SCORES: tuple[tuple[int, int], ...] = ((1, 0), (128, 20), (256, 80))
CIPHER_TOP = 100

# Table 1 "Letter grade translation": (score at or above, letter).
LETTER_FLOORS: tuple[tuple[int, Letter], ...] = ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E"))

# Elliptic-curve and EdDSA keys in the RSA/DH bits of equal strength (NIST SP 800-57 Part 1 Rev. 5, Table 2): the
# guide's Table 4 is written in RSA/DH bits, and SSL Labs rates EC keys by this equivalence.
_EC_BY_NAME = {
    "x25519": 3072,
    "x448": 7680,
    "secp256r1": 3072,
    "prime256v1": 3072,
    "secp384r1": 7680,
    "secp521r1": 15360,
    "brainpoolp256r1": 3072,
    "brainpoolp384r1": 7680,
    "brainpoolp512r1": 15360,
    "ed25519": 3072,
    "ed448": 7680,
}
_EC_BY_BITS: tuple[tuple[int, int], ...] = ((512, 15360), (384, 7680), (250, 3072), (224, 2048), (160, 1024))


def ec_strength(bits: int | None, name: str | None = None) -> int | None:
    """The RSA/DH-equivalent strength of an elliptic curve (or a hybrid group, by its classical curve)."""
    key = (name or "").lower()
    for curve, strength in _EC_BY_NAME.items():
        if key.startswith(curve):
            return strength
    if "x25519" in key or "secp256r1" in key:  # hybrid post-quantum groups: X25519MLKEM768, SecP256r1MLKEM768
        return 3072
    if "secp384r1" in key:
        return 7680
    if bits is None:
        return None
    return next((strength for floor, strength in _EC_BY_BITS if bits >= floor), 512)


def key_strength(key: PublicKey) -> int | None:
    """A certificate key's strength in RSA bits: RSA and DSA by modulus, EC and EdDSA by equivalence."""
    if key.type in ("RSA", "DSA"):
        return key.size
    if key.type in ("EC", "Ed25519", "Ed448"):
        return ec_strength(key.size, key.curve or key.type)
    return None


_EPHEMERAL = re.compile(r"^(?P<kind>ECDH|DH|RSA)\s+(?:(?P<name>[A-Za-z][\w-]*)\s*)?(?P<bits>\d+)?$")


def ephemeral_strength(text: str | None) -> int | None:
    """The strength of the ephemeral key a suite used ('ECDH x25519 253', 'DH 1024', 'RSA 512', 'X25519MLKEM768')."""
    if not text:
        return None
    match = _EPHEMERAL.match(text.strip())
    if match is None:
        return ec_strength(None, text)
    bits = int(match["bits"]) if match["bits"] else None
    if match["kind"] == "ECDH":
        return ec_strength(bits, match["name"])
    return bits


def _table(value: int, table: tuple[tuple[int, int], ...], top: int) -> int:
    return next((score for below, score in table if value < below), top)


def letter_for(score: int) -> Letter:
    return next((letter for floor, letter in LETTER_FLOORS if score >= floor), "F")


# --- categories --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Accepted:
    version: ProtocolVersion
    suite: CipherSuite


def _accepted(facts: Facts) -> list[_Accepted]:
    return [_Accepted(p.version, suite) for p in facts.protocols if p.status == "accepted" for suite in p.cipher_suites]


def protocol_score(versions: Iterable[ProtocolVersion]) -> int:
    """Guide 2009k, "Protocol Support": the best version's score plus the worst's, halved."""
    scores = [PROTOCOL_SCORES[v] for v in versions]
    return (max(scores) + min(scores)) // 2 if scores else 0


def _suite_key_exchange(suite: CipherSuite, certificate: int | None) -> tuple[int, str | None]:
    """(score, what could not be told) of one suite's key exchange: guide 2009k "Key Exchange" — with DHE or ECDHE
    the handshake is as strong as the weaker of the server's key and the ephemeral parameters."""
    if suite.anonymous:
        return ANONYMOUS_SCORE, None
    if suite.export:
        return EXPORT_SCORE, None
    kx = (suite.key_exchange or "").upper()
    strengths = [certificate] if certificate is not None else []
    missing = None if certificate is not None else "the certificate's key size"
    if kx not in ("RSA", "PSK", "RSA_PSK"):  # DHE, ECDHE, TLS 1.3 ('any'), static (EC)DH: the parameters count too
        ephemeral = ephemeral_strength(suite.ephemeral_key)
        if ephemeral is not None:
            strengths.append(ephemeral)
        elif kx not in ("ECDH", "DH"):
            missing = f"the ephemeral key size of {suite.name}"
    if not strengths:
        return KEY_EXCHANGE_TOP, missing
    return _table(min(strengths), KEY_EXCHANGE_SCORES, KEY_EXCHANGE_TOP), missing


def cipher_score(suites: Iterable[CipherSuite]) -> int | None:
    """Guide 2009k, "Cipher Strength": the strongest cipher's score plus the weakest's, halved."""
    scores = [_table(s.key_bits, CIPHER_SCORES, CIPHER_TOP) for s in suites if s.key_bits is not None]
    return (max(scores) + min(scores)) // 2 if scores else None


# --- caps ------------------------------------------------------------------------------------------------

_RC4 = re.compile(r"RC4")
_64_BIT_BLOCK = re.compile(r"3DES|(?<![0-9A-Z])DES|IDEA|RC2")
_AEAD = re.compile(r"GCM|CCM|CHACHA20_POLY1305")
_CBC = re.compile(r"CBC")
_MODERN = (ProtocolVersion.TLSv1_1, ProtocolVersion.TLSv1_2, ProtocolVersion.TLSv1_3)
_OLD_TLS = (ProtocolVersion.TLSv1_0, ProtocolVersion.TLSv1_1)
_FORWARD_SECRET = ("ECDHE", "DHE", "ANY", "ECDHE_PSK", "DHE_PSK")


class _Caps:
    def __init__(self) -> None:
        self.caps: list[GradeCap] = []
        self.warnings: list[str] = []

    def cap(self, grade: Grade, rule: str, reason: str, source: str) -> None:
        self.caps.append(GradeCap(grade=grade, rule=rule, reason=reason, source=source))

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)


def _protocol_caps(out: _Caps, versions: set[ProtocolVersion], accepted: list[_Accepted]) -> None:
    if ProtocolVersion.SSLv2 in versions:
        out.cap("F", "sslv2", "SSL 2.0 is accepted", f"{GUIDE_2009K}, Changes in 2009c (7 February 2013)")
    if ProtocolVersion.SSLv3 in versions:
        if max(versions, key=list(ProtocolVersion).index) == ProtocolVersion.SSLv3:
            out.cap("F", "sslv3-best", "SSL 3.0 is the best version accepted", f"{GUIDE_2009K}, Changes in 2009i")
        cbc = any(a.version == ProtocolVersion.SSLv3 and _CBC.search(a.suite.encryption or "") for a in accepted)
        if cbc:
            reason = "SSL 3.0 is accepted with CBC suites (POODLE)"
            out.cap("C", "poodle", reason, f"{GUIDE_2009K}, Changes in 2009g (15 October 2014)")
        out.cap("B", "sslv3", "SSL 3.0 is accepted", f"{GUIDE_2009K}, Changes in 2009h (30 October 2014)")
    old = [v.value for v in _OLD_TLS if v in versions]
    if old:
        out.cap("B", "tls10-tls11", f"{' and '.join(old)} accepted", BLOG_2020)
    if not versions & {ProtocolVersion.TLSv1_2, ProtocolVersion.TLSv1_3}:
        reason = "neither TLS 1.2 nor TLS 1.3 is accepted"
        out.cap("C", "no-tls12", reason, f"{GUIDE_2009K}, Changes in 2009j (20 May 2015)")


def _suite_caps(out: _Caps, accepted: list[_Accepted]) -> None:
    suites = [a.suite for a in accepted]
    if any(s.export for s in suites):
        out.cap("F", "export", "export suites are accepted (FREAK)", f"{GUIDE_WIKI}, Changes in 2009l")
    rc4 = [a for a in accepted if _RC4.search(a.suite.encryption or "")]
    if rc4:
        if len(rc4) == len(accepted):
            out.cap(
                "F", "rc4-only", "only RC4 suites are accepted", f"{GUIDE_2009K}, Changes in 2009k (14 October 2015)"
            )
        if any(a.version in _MODERN for a in rc4):
            reason = "RC4 is accepted with TLS 1.1 or newer"
            out.cap("C", "rc4-modern", reason, f"{GUIDE_2009K}, Changes in 2009j (20 May 2015)")
        out.cap("B", "rc4", "RC4 suites are accepted", f"{GUIDE_2009K}, Changes in 2009i (8 December 2014)")
    block64 = sorted(
        {a.suite.name for a in accepted if a.version in _MODERN and _64_BIT_BLOCK.search(a.suite.encryption or "")}
    )
    if block64:
        reason = f"64-bit block ciphers (3DES, DES, IDEA, RC2) accepted with TLS 1.1 or newer: {', '.join(block64[:3])}"
        out.cap("C", "64-bit-block", reason, f"{BLOG_2017}; {GUIDE_WIKI}, Changes in 2009n")
    if suites and not any((s.key_exchange or "").upper() in _FORWARD_SECRET and not s.anonymous for s in suites):
        out.cap("B", "no-forward-secrecy", "no accepted suite has forward secrecy (ECDHE, DHE or TLS 1.3)", BLOG_2018)
    if suites and not any(_AEAD.search(s.encryption or "") for s in suites):
        reason = "no accepted suite is AEAD (GCM, CCM, ChaCha20-Poly1305)"
        out.cap("B", "no-aead", reason, BLOG_2018)


def _key_caps(out: _Caps, facts: Facts, accepted: list[_Accepted]) -> None:
    leaf = facts.certificate.leaf
    if leaf is not None:
        strength = key_strength(leaf.public_key)
        kind = leaf.public_key.type
        if strength is not None and strength < 1024:
            out.cap(
                "F",
                "key-insecure",
                f"the certificate's {kind} key is {strength} bits",
                f"{GUIDE_2009K}, Changes in 2009e",
            )
        elif strength is not None and strength < 2048:
            reason = f"the certificate's {kind} key is {strength} bits (below 2048)"
            out.cap("B", "key-weak", reason, f"{GUIDE_2009K}, Changes in 2009e (21 January 2014)")
        signature = (leaf.signature_hash or leaf.signature_algorithm or "").lower()
        if "md5" in signature or "md2" in signature:
            reason = f"the certificate is signed with {leaf.signature_algorithm}"
            out.cap("F", "signature-insecure", reason, f"{GUIDE_2009K}, Changes in 2009e (21 January 2014)")
    dh = [
        bits
        for a in accepted
        if (a.suite.key_exchange or "").upper() in ("DHE", "DH", "DHE_PSK")
        and (bits := ephemeral_strength(a.suite.ephemeral_key)) is not None
        and (a.suite.ephemeral_key or "").startswith("DH")
    ]
    if facts.groups.dh_parameter_bits.status == "ok" and facts.groups.dh_parameter_bits.value is not None:
        dh.append(facts.groups.dh_parameter_bits.value)
    if dh and min(dh) < 2048:
        reason = f"DH parameters of {min(dh)} bits (below 2048)"
        out.cap("B", "weak-dh", reason, f"{GUIDE_2009K}, Changes in 2009j (20 May 2015)")


def _behaviour_caps(out: _Caps, facts: Facts, tls12_or_older: bool) -> None:
    b = facts.behaviours
    if b.status != "ok":
        out.warn(
            "behaviours were not probed (run with --all-facts or a pack that looks at them): compression (CRIME), "
            "renegotiation, Heartbleed, CCS injection and ROBOT were not judged"
        )
        return
    if b.compression.status == "ok" and b.compression.value:
        out.cap("C", "crime", "TLS compression is enabled (CRIME)", f"{GUIDE_2009K}, Changes in 2009j (20 May 2015)")
    for name, observed, label in (
        ("heartbleed", b.heartbleed, "Heartbleed (CVE-2014-0160)"),
        ("ccs-injection", b.ccs_injection, "CCS injection (CVE-2014-0224)"),
    ):
        if observed.status == "ok" and observed.value:
            out.cap("F", name, f"vulnerable to {label}", f"{GUIDE_WIKI}, Changes (vulnerabilities graded F)")
    if b.robot.status == "ok" and (b.robot.value or "").startswith("vulnerable"):
        out.cap("F", "robot", f"ROBOT: {b.robot.value}", BLOG_2018)
    secure = b.secure_renegotiation
    if tls12_or_older and secure.status == "ok" and secure.value is False:
        if b.client_renegotiation.status == "ok" and b.client_renegotiation.value:
            reason = "insecure client-initiated renegotiation (no RFC 5746 support, client renegotiation honoured)"
            out.cap("F", "insecure-renegotiation", reason, f"{GUIDE_2009K}, Changes in 2009c (7 February 2013)")
        else:
            reason = "secure renegotiation (RFC 5746) is not supported"
            out.cap("A-", "no-secure-renegotiation", reason, f"{GUIDE_2009K}, Changes in 2009e (warning: A-)")


def _certificate_caps(out: _Caps, facts: Facts) -> None:
    """Guide 2009k "Certificate Inspection" and 2009q "Methodology Overview": certificate problems replace the
    letter with T (not trusted: expired, not yet valid, self-signed, unknown CA, revoked ...) or M (name mismatch)."""
    cert = facts.certificate
    if cert.status != "ok" or cert.leaf is None:
        out.warn("the certificate was not observed: trust (T) and name (M) were not judged")
        return
    source = f"{GUIDE_WIKI}, Methodology Overview; {GUIDE_2009K}, Certificate Inspection"
    if not cert.trust:
        out.warn("certificate trust was not judged")
    elif not any(t.trusted for t in cert.trust):
        # a store that failed it for the name alone trusts its chain: a name problem (M), not a trust problem (T)
        if any(t.reason == "name_mismatch" for t in cert.trust):
            out.cap("M", "name-mismatch", "a store trusts the chain, but not for this name", source)
        else:
            reason = next((t.reason for t in cert.trust if t.reason is not None), "no store trusts it")
            out.cap("T", "untrusted", f"the certificate is not trusted: {reason}", source)
    if cert.chain_complete.status == "ok" and cert.chain_complete.value is False:
        reason = "the served chain is incomplete (an intermediate is missing)"
        out.cap("B", "incomplete-chain", reason, f"{GUIDE_2009K}, Changes in 2009i (8 December 2014)")
    revoked = [r for r in cert.revocation if r.leaf and r.status == "revoked"]
    if revoked:
        out.cap("T", "revoked", f"the certificate is revoked ({revoked[0].source})", source)
    # --no-name-check (trust_name None): peers are identified by their DN, a name mismatch is no problem
    if cert.trust_name is not None and cert.hostname_match.status == "ok" and cert.hostname_match.value is False:
        mismatch: str = cert.hostname_mismatch or "no_matching_name"
        out.cap("M", "name-mismatch", f"the certificate does not match {facts.target.host}: {mismatch}", source)


_SEVERITY: dict[str, int] = {**dict(_RANK.items()), "T": len(LETTERS), "M": len(LETTERS) + 1}


def _limiting_first(caps: list[GradeCap]) -> list[GradeCap]:
    unique: dict[tuple[str, str], GradeCap] = {}
    for cap in caps:
        unique.setdefault((cap.rule, cap.grade), cap)
    # T and M replace the letter; among letters the lowest limits. T before M: without trust the name is moot.
    return sorted(unique.values(), key=lambda c: (c.grade not in ("T", "M"), c.grade != "T", -_SEVERITY[c.grade]))


def _final(letter: Letter, caps: list[GradeCap]) -> Grade:
    """T or M when a certificate rule says so, else the lowest of the score's letter and every cap."""
    for cap in caps:
        if cap.grade in ("T", "M"):
            return cap.grade
    letters = [letter, *(cap.grade for cap in caps)]
    return max(letters, key=lambda g: _SEVERITY[g])


# --- the grade -------------------------------------------------------------------------------------------


def grade(facts: Facts) -> Grading | None:
    """The grade of a target from its facts; None when it was not scanned, is a certificate file, or no accepted
    protocol version and cipher suite was observed (nothing to score)."""
    if facts.status != "ok" or facts.target.source == "file":
        return None
    versions = {p.version for p in facts.protocols if p.status == "accepted"}
    accepted = _accepted(facts)
    if not versions or not accepted:  # no suites observed: nothing to score key exchange and ciphers on
        return None
    out = _Caps()
    if any(p.status == "error" for p in facts.protocols):
        out.warn("some protocol versions could not be probed: the protocol score counts those accepted")
    leaf = facts.certificate.leaf
    certificate = key_strength(leaf.public_key) if leaf is not None else None
    kx_scores: list[int] = []
    for a in accepted:
        score, missing = _suite_key_exchange(a.suite, certificate)
        kx_scores.append(score)
        if missing:
            out.warn(f"key exchange scored without {missing}")
    p_score = protocol_score(versions)
    k_score = min(kx_scores) if kx_scores else 0
    c_score = cipher_score(a.suite for a in accepted)
    c_score = 0 if c_score is None else c_score
    parts = (p_score, k_score, c_score)
    tenths = p_score * WEIGHTS["protocol"] + k_score * WEIGHTS["key_exchange"] + c_score * WEIGHTS["cipher"]
    total = 0 if 0 in parts else (tenths + 5) // 10  # rounded half up: 91.5 is 92
    letter = letter_for(total)
    _protocol_caps(out, versions, accepted)
    _suite_caps(out, accepted)
    _key_caps(out, facts, accepted)
    _behaviour_caps(out, facts, bool(versions - {ProtocolVersion.TLSv1_3}))
    _certificate_caps(out, facts)
    out.warn("A+ is never given: it needs HTTP Strict Transport Security, which tlsgate does not observe")
    caps = _limiting_first(out.caps)
    final: Grade = _final(letter, caps)
    return Grading(
        grade=final,
        score=total,
        score_grade=letter,
        protocol_score=p_score,
        key_exchange_score=k_score,
        cipher_score=c_score,
        caps=caps,
        warnings=out.warnings,
    )
