"""The IANA TLS Cipher Suites and Supported Groups registries, carried as data (``scanner/data/``).

Each assigned cipher suite becomes a ``CipherSuiteInfo`` whose attributes are read from its IANA name
(``TLS_<key exchange>_WITH_<cipher>_<mac>`` up to TLS 1.2, ``TLS_<aead>_<hash>`` for TLS 1.3), so that the
enumerator can offer every registered suite and the facts describe the ones a server accepted, whether or not
any local TLS library implements them. Reserved, unassigned and signalling (SCSV) entries are skipped.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Generic, Literal, TypeVar, overload

from scanner.facts import CipherSuite, NamedGroup, ProtocolVersion

CIPHER_SUITES_FILE = "iana-tls-cipher-suites.csv"
SUPPORTED_GROUPS_FILE = "iana-tls-supported-groups.csv"

LEGACY_VERSIONS: frozenset[ProtocolVersion] = frozenset(
    {ProtocolVersion.SSLv3, ProtocolVersion.TLSv1_0, ProtocolVersion.TLSv1_1, ProtocolVersion.TLSv1_2}
)
TLS13_ONLY: frozenset[ProtocolVersion] = frozenset({ProtocolVersion.TLSv1_3})

# Suites outside 0x13xx that are defined for TLS 1.3 only (no key exchange in their name): SM4 (RFC 8998),
# integrity-only (RFC 9150) and the GOST TLS 1.3 suites (RFC 9367).
_TLS13_OUTSIDE_13XX = frozenset({0x00C6, 0x00C7, 0xC0B4, 0xC0B5, 0xC103, 0xC104, 0xC105, 0xC106})
# TLS-ECCPWD (RFC 8492) is defined for TLS 1.2 and TLS 1.3 alike.
_ECCPWD = frozenset({0xC0B0, 0xC0B1, 0xC0B2, 0xC0B3})

# The part before _WITH_: (key exchange, authentication, anonymous). Export variants add _EXPORT.
_KEY_EXCHANGES: dict[str, tuple[str, str, bool]] = {
    "NULL": ("NULL", "NULL", True),
    "RSA": ("RSA", "RSA", False),
    "DH_DSS": ("DH", "DSS", False),
    "DH_RSA": ("DH", "RSA", False),
    "DHE_DSS": ("DHE", "DSS", False),
    "DHE_RSA": ("DHE", "RSA", False),
    # Anonymous (EC)DH sends fresh, unsigned parameters in ServerKeyExchange: ephemeral, without authentication.
    "DH_anon": ("DHE", "anon", True),
    "ECDH_anon": ("ECDHE", "anon", True),
    "KRB5": ("KRB5", "KRB5", False),
    "PSK": ("PSK", "PSK", False),
    "DHE_PSK": ("DHE_PSK", "PSK", False),
    "PSK_DHE": ("DHE_PSK", "PSK", False),  # the registry's spelling for 0xC0AA/0xC0AB (RFC 6655)
    "RSA_PSK": ("RSA_PSK", "RSA", False),
    "ECDHE_PSK": ("ECDHE_PSK", "PSK", False),
    "ECDH_ECDSA": ("ECDH", "ECDSA", False),
    "ECDHE_ECDSA": ("ECDHE", "ECDSA", False),
    "ECDH_RSA": ("ECDH", "RSA", False),
    "ECDHE_RSA": ("ECDHE", "RSA", False),
    "SRP_SHA": ("SRP", "SRP", False),
    "SRP_SHA_RSA": ("SRP", "RSA", False),
    "SRP_SHA_DSS": ("SRP", "DSS", False),
    "ECCPWD": ("ECCPWD", "ECCPWD", False),
    "GOSTR341112_256": ("VKO_GOSTR3410_2012", "GOSTR3410_2012", False),
}
_MACS = frozenset({"NULL", "MD5", "SHA", "SHA256", "SHA384", "SM3", "OMAC", "IMIT"})
_KEY_BITS: tuple[tuple[str, int], ...] = (
    # Longest prefix first: the first match wins.
    ("AES_128", 128), ("AES_256", 256), ("ARIA_128", 128), ("ARIA_256", 256),
    ("CAMELLIA_128", 128), ("CAMELLIA_256", 256), ("AEGIS_128L", 128), ("AEGIS_256", 256),
    ("CHACHA20_POLY1305", 256), ("3DES_EDE", 168), ("DES40", 40), ("DES_CBC_40", 40), ("DES_CBC", 56),
    ("RC4_40", 40), ("RC4_128", 128), ("RC2_CBC_40", 40), ("IDEA", 128), ("SEED", 128), ("SM4", 128),
    ("KUZNYECHIK", 256), ("MAGMA", 256), ("GOST28147", 256), ("NULL", 0),
)  # fmt: skip
_RANGE = re.compile(r"[-*]")


@dataclass(frozen=True)
class CipherSuiteInfo:
    code: int
    name: str
    key_exchange: str  # ECDHE, DHE, RSA, ECDH, DH, PSK, DHE_PSK, ECDHE_PSK, RSA_PSK, SRP, KRB5, ... ; "any" for 1.3
    authentication: str  # RSA, ECDSA, DSS, PSK, anon, ... ; "any" for TLS 1.3
    encryption: str  # e.g. AES_128_GCM, CHACHA20_POLY1305, 3DES_EDE_CBC, NULL
    mac: str  # MAC or PRF hash: SHA, SHA256, MD5, ... ; AEAD suites name their PRF hash
    key_bits: int  # symmetric key size; 0 for NULL encryption
    anonymous: bool
    export: bool
    versions: frozenset[ProtocolVersion]  # the versions whose ClientHello may offer it
    dtls_ok: bool
    recommended: str  # the registry's column: Y, N, D or empty
    reference: str

    @property
    def hex(self) -> str:
        return f"0x{self.code:04X}"

    @property
    def tls13(self) -> bool:
        return ProtocolVersion.TLSv1_3 in self.versions


GroupKind = Literal["ecdhe", "ffdhe", "hybrid_pq", "pq", "other"]


@dataclass(frozen=True)
class NamedGroupInfo:
    code: int
    name: str
    kind: GroupKind
    dtls_ok: bool = True
    recommended: str = ""
    obsolete: bool = False

    @property
    def hex(self) -> str:
        return f"0x{self.code:04X}"


_Info = TypeVar("_Info", CipherSuiteInfo, NamedGroupInfo)


class _Registry(Generic[_Info]):
    """One carried registry, read on first use and then kept, with its entries by code and by name."""

    def __init__(self, load: Callable[[], list[_Info]]) -> None:
        self._load: Callable[[], list[_Info]] = load

    @functools.cached_property
    def _entries(self) -> tuple[_Info, ...]:
        return tuple(self._load())

    @functools.cached_property
    def _by_code(self) -> dict[int, _Info]:
        return {e.code: e for e in self._entries}

    @functools.cached_property
    def _by_name(self) -> dict[str, _Info]:
        return {e.name: e for e in self._entries}

    def all(self) -> tuple[_Info, ...]:
        """Every entry, in the order the loader gives."""
        return self._entries

    def get(self, code: int) -> _Info | None:
        return self._by_code.get(code)

    def named(self, name: str) -> _Info | None:
        return self._by_name.get(name)


class RegistryError(ValueError):
    """The carried registry file does not parse: a packaging or editing mistake, never a network condition."""


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("scanner").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _is_assignment(value: str, description: str) -> bool:
    return not _RANGE.search(value) and description.startswith("TLS_") and not description.endswith("_SCSV")


def _suite_code(value: str) -> int:
    high, low = (int(part, 16) for part in value.split(","))
    return high << 8 | low


def _key_bits(encryption: str) -> int:
    for prefix, bits in _KEY_BITS:
        if encryption.startswith(prefix):
            return bits
    raise RegistryError(f"no key size known for cipher {encryption!r}")


def parse_suite_name(code: int, name: str) -> tuple[str, str, str, str, int, bool, bool, frozenset[ProtocolVersion]]:
    """(key_exchange, authentication, encryption, mac, key_bits, anonymous, export, versions) from an IANA name."""
    body = name.removeprefix("TLS_")
    if "_WITH_" in body and code not in _TLS13_OUTSIDE_13XX:
        kx_part, cipher_part = body.split("_WITH_", 1)
        export = "_EXPORT" in kx_part
        kx_key = kx_part.replace("_EXPORT", "")
        if kx_key not in _KEY_EXCHANGES:
            raise RegistryError(f"{name}: unknown key exchange {kx_part!r}")
        key_exchange, authentication, anonymous = _KEY_EXCHANGES[kx_key]
        versions = LEGACY_VERSIONS | (TLS13_ONLY if code in _ECCPWD else frozenset())
    else:
        # TLS 1.3: the suite names only the AEAD and the hash; key exchange and authentication are negotiated
        # separately. GOST TLS 1.3 suites keep the "GOSTR341112_256_WITH_" prefix: the hash, not a key exchange.
        cipher_part = body.split("_WITH_", 1)[1] if "_WITH_" in body else body
        key_exchange, authentication, anonymous, export = "any", "any", False, False
        versions = TLS13_ONLY
        if code in _TLS13_OUTSIDE_13XX and body.startswith("GOSTR341112_256_WITH_"):
            return (key_exchange, authentication, cipher_part, "GOSTR341112_256", 256, False, False, versions)
    tokens = cipher_part.split("_")
    if cipher_part.startswith("28147_"):  # TLS_GOSTR341112_256_WITH_28147_CNT_IMIT: GOST 28147-89 in CNT mode
        tokens = ["GOST28147", *tokens[1:]]
    if tokens[-1] in _MACS and len(tokens) > 1:
        encryption, mac = "_".join(tokens[:-1]), tokens[-1]
    elif tokens[-1] in ("CCM", "8"):
        # AES-CCM suites of RFC 6655/7251 carry no hash in their name; they use the SHA-256 PRF.
        encryption, mac = "_".join(tokens), "SHA256"
    else:
        raise RegistryError(f"{name}: cannot split cipher and MAC in {cipher_part!r}")
    if code in (0xC0B4, 0xC0B5):  # TLS_SHA256_SHA256, TLS_SHA384_SHA384: integrity only (RFC 9150)
        encryption = "NULL"
    return (key_exchange, authentication, encryption, mac, _key_bits(encryption), anonymous, export, versions)


def _load_suites() -> list[CipherSuiteInfo]:
    """Every assigned cipher suite of the carried IANA registry, in code order."""
    suites: list[CipherSuiteInfo] = []
    for row in _read(CIPHER_SUITES_FILE):
        value, name = row["Value"].strip(), row["Description"].strip()
        if not _is_assignment(value, name):
            continue
        code = _suite_code(value)
        kx, auth, enc, mac, bits, anonymous, export, versions = parse_suite_name(code, name)
        suites.append(
            CipherSuiteInfo(
                code=code,
                name=name,
                key_exchange=kx,
                authentication=auth,
                encryption=enc,
                mac=mac,
                key_bits=bits,
                anonymous=anonymous,
                export=export,
                versions=versions,
                dtls_ok=row["DTLS-OK"].strip() == "Y",
                recommended=row["Recommended"].strip(),
                reference=row["Reference"].strip(),
            )
        )
    suites.sort(key=lambda s: s.code)
    return suites


_SUITES = _Registry(_load_suites)
cipher_suites = _SUITES.all
cipher_suite = _SUITES.get
cipher_suite_by_name = _SUITES.named


def suites_for_version(version: ProtocolVersion) -> tuple[CipherSuiteInfo, ...]:
    """The suites a ClientHello for ``version`` can offer, in registry order."""
    return tuple(s for s in cipher_suites() if version in s.versions)


@functools.cache
def openssl_names() -> dict[int, str]:
    """OpenSSL's names for the suites the local OpenSSL knows (for readers used to them); others have none."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    except ssl.SSLError:
        return {}
    return {int(c["id"]) & 0xFFFF: str(c["name"]) for c in context.get_ciphers()}


@overload
def to_fact(info: CipherSuiteInfo, ephemeral_key: str | None = None) -> CipherSuite: ...
@overload
def to_fact(info: NamedGroupInfo) -> NamedGroup: ...
def to_fact(info: CipherSuiteInfo | NamedGroupInfo, ephemeral_key: str | None = None) -> CipherSuite | NamedGroup:
    """The facts model's view of a registry entry (a suite with the ephemeral key seen, or a group)."""
    if isinstance(info, NamedGroupInfo):
        return group_to_fact(info)
    return CipherSuite(
        name=info.name,
        code=info.hex,
        openssl_name=openssl_names().get(info.code),
        key_exchange=info.key_exchange,
        authentication=info.authentication,
        encryption=info.encryption,
        mac=info.mac,
        key_bits=info.key_bits,
        anonymous=info.anonymous,
        export=info.export,
        ephemeral_key=ephemeral_key,
    )


def _group_kind(code: int, name: str) -> GroupKind:
    if 0x0100 <= code <= 0x01FF:
        return "ffdhe"
    if "MLKEM" in name or "Kyber" in name:
        # A hybrid names its classical half too (X25519MLKEM768, SecP256r1MLKEM768); a pure KEM does not.
        return "hybrid_pq" if re.match(r"(X25519|X448|SecP\d+r1)", name) else "pq"
    if 1 <= code <= 0x00FF:
        return "ecdhe"
    return "other"


def _load_groups() -> list[NamedGroupInfo]:
    """Every assigned named group of the carried IANA registry, in registry order."""
    groups: list[NamedGroupInfo] = []
    for row in _read(SUPPORTED_GROUPS_FILE):
        value, description = row["Value"].strip(), row["Description"].strip()
        if not value.isdigit() or description in ("Reserved", "Unassigned") or description.startswith("Reserved"):
            continue
        code = int(value)
        obsolete = description.endswith("(OBSOLETE)")
        name = description.removesuffix("(OBSOLETE)").strip()
        groups.append(
            NamedGroupInfo(
                code=code,
                name=name,
                kind=_group_kind(code, name),
                dtls_ok=row["DTLS-OK"].strip() == "Y",
                recommended=row["Recommended"].strip(),
                obsolete=obsolete,
            )
        )
    return groups


_GROUPS = _Registry(_load_groups)
named_groups = _GROUPS.all
named_group = _GROUPS.get
named_group_by_name = _GROUPS.named


def group_name(code: int) -> str:
    """The IANA name of a group code, or its hex form when the registry does not name it."""
    info = named_group(code)
    return info.name if info is not None else f"0x{code:04X}"


def group_to_fact(info: NamedGroupInfo) -> NamedGroup:
    return NamedGroup(name=info.name, code=info.hex, kind=info.kind)
