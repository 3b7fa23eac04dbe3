"""Client authentication (mTLS) against real ``openssl s_server`` instances on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scanner.facts import ClientAuthFacts, ErrorClass
from scanner.probe import sslyze_adapter
from scanner.probe.checks.clientauth import _throwaway_certificate, probe_client_auth
from scanner.probe.connect.credentials import load_credentials
from scanner.probe.connect.endpoint import ClientCredentials
from scanner.probe.registry import Extra
from scanner.probe.sslyze_adapter import ServedCertificates, SslyzeRequest
from tests.helpers import ClientPki, ServerFiles, client_pki, issue_certificate, loopback_endpoint, openssl_server

# s_server lets any client certificate through unless told to fail on a verification error.
REQUIRED = ("-Verify", "1", "-verify_return_error")
OPTIONAL = ("-verify", "1", "-verify_return_error")
VERSION_FLAGS = {"TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> ClientPki:
    return client_pki(tmp_path_factory.mktemp("client-pki"))


@pytest.fixture
def credentials(client: ClientPki, tmp_path: Path) -> ClientCredentials:
    return load_credentials(client.cert, client.key, None, None, None, tmp_path)


def _probe(port: int, credentials: ClientCredentials | None = None, timeout: float = 3.0) -> ClientAuthFacts:
    return probe_client_auth(loopback_endpoint(port, timeout=timeout, credentials=credentials))


@pytest.mark.parametrize("version", VERSION_FLAGS)
@pytest.mark.parametrize(("mode", "flags"), [("required", REQUIRED), ("optional", OPTIONAL)])
def test_requirement_ca_names_and_acceptance(
    pki: ServerFiles, client: ClientPki, credentials: ClientCredentials, version: str, mode: str, flags: tuple[str, ...]
) -> None:
    """The facts show the requirement and the client CA's name; the throwaway certificate is refused, ours accepted."""
    with openssl_server(pki.cert, pki.key, *flags, "-CAfile", str(client.ca), VERSION_FLAGS[version]) as port:
        facts = _probe(port, credentials)
    assert facts.status == "ok", facts.error
    assert facts.requirement.status == "ok"
    assert facts.requirement.value == mode
    assert facts.ca_names.value == [client.ca_name]
    assert client.ca_name == "CN=tlsgate client CA,O=Müller\\, Schmidt & Co,C=DE"
    assert facts.throwaway_certificate_accepted.status == "ok"
    assert facts.throwaway_certificate_accepted.value is False
    assert facts.provided_certificate_accepted.status == "ok"
    assert facts.provided_certificate_accepted.value is True


def test_server_without_client_auth(pki: ServerFiles, credentials: ClientCredentials) -> None:
    """A server that sends no CertificateRequest is not_requested, and the rest says why it was not probed."""
    with openssl_server(pki.cert, pki.key) as port:
        facts = _probe(port, credentials)
    assert facts.status == "ok"
    assert facts.requirement.value == "not_requested"
    for fact in (facts.ca_names, facts.throwaway_certificate_accepted, facts.provided_certificate_accepted):
        assert fact.status == "not_probed"
        assert fact.value is None
        assert fact.error is not None
        assert fact.error.message == "the server does not request a client certificate"


@pytest.mark.parametrize("version", VERSION_FLAGS)
def test_required_without_credentials(pki: ServerFiles, client: ClientPki, version: str) -> None:
    """Without a client certificate a required server is still reported as such, and says none was given."""
    with openssl_server(pki.cert, pki.key, *REQUIRED, "-CAfile", str(client.ca), VERSION_FLAGS[version]) as port:
        facts = _probe(port)
    assert facts.status == "ok"
    assert facts.requirement.value == "required"
    assert facts.ca_names.value == [client.ca_name]
    assert facts.throwaway_certificate_accepted.value is False
    assert facts.provided_certificate_accepted.status == "not_probed"
    assert facts.provided_certificate_accepted.error is not None
    assert "no client certificate was given" in facts.provided_certificate_accepted.error.message


@pytest.mark.parametrize("version", VERSION_FLAGS)
@pytest.mark.parametrize("source", ["env", "file"])
def test_pkcs12_credentials_are_accepted(
    pki: ServerFiles,
    client: ClientPki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    version: str,
    source: str,
) -> None:
    """A PKCS#12 client certificate, its password from an environment variable or a file, is accepted."""
    if source == "env":
        monkeypatch.setenv("TLSGATE_TEST_P12_PASSWORD", client.password)
        loaded = load_credentials(None, None, client.p12, "TLSGATE_TEST_P12_PASSWORD", None, tmp_path)
    else:
        password_file = tmp_path / "password.txt"
        password_file.write_text(client.password + "\n")
        workdir = tmp_path / "work"
        workdir.mkdir()
        loaded = load_credentials(None, None, client.p12, None, password_file, workdir)
    with openssl_server(pki.cert, pki.key, *REQUIRED, "-CAfile", str(client.ca), VERSION_FLAGS[version]) as port:
        facts = _probe(port, loaded)
    assert facts.requirement.value == "required"
    assert facts.provided_certificate_accepted.value is True


@pytest.mark.parametrize("version", VERSION_FLAGS)
def test_certificate_from_another_ca_is_refused(
    pki: ServerFiles, client: ClientPki, tmp_path: Path, version: str
) -> None:
    """A client certificate the server's CAs did not issue is reported as not accepted."""
    stranger = issue_certificate(
        tmp_path / "stranger", "stranger", key_type="p384", eku=[ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    loaded = load_credentials(stranger.cert, stranger.key, None, None, None, workdir)
    with openssl_server(pki.cert, pki.key, *REQUIRED, "-CAfile", str(client.ca), VERSION_FLAGS[version]) as port:
        facts = _probe(port, loaded)
    assert facts.provided_certificate_accepted.status == "ok"
    assert facts.provided_certificate_accepted.value is False


@pytest.mark.parametrize("version", VERSION_FLAGS)
def test_every_ca_name_is_listed(pki: ServerFiles, client: ClientPki, tmp_path: Path, version: str) -> None:
    """When the server trusts several client CAs, every one of their names is reported."""
    other = issue_certificate(tmp_path / "other", "other", key_type="p384")
    bundle = tmp_path / "cas.pem"
    bundle.write_bytes(client.ca.read_bytes() + other.ca.read_bytes())
    with openssl_server(pki.cert, pki.key, *OPTIONAL, "-CAfile", str(bundle), VERSION_FLAGS[version]) as port:
        facts = _probe(port)
    assert facts.ca_names.value is not None
    assert sorted(facts.ca_names.value) == sorted([client.ca_name, "CN=other test CA"])


def test_tls13_server_without_tickets(pki: ServerFiles, client: ClientPki, credentials: ClientCredentials) -> None:
    """A TLS 1.3 server that sends no session ticket: silence after the handshake is acceptance, an alert refusal."""
    flags = (*OPTIONAL, "-CAfile", str(client.ca), "-tls1_3", "-num_tickets", "0")
    with openssl_server(pki.cert, pki.key, *flags) as port:
        facts = _probe(port, credentials, timeout=1.0)
    assert facts.requirement.value == "optional"
    assert facts.throwaway_certificate_accepted.value is False
    assert facts.provided_certificate_accepted.value is True


def test_throwaway_ca_borrows_the_acceptable_name(tmp_path: Path) -> None:
    """The throwaway certificate claims the server's CA as issuer (so name-only checks are caught) and is clientAuth."""
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corporate Client CA")])
    cert_path, key_path = _throwaway_certificate(tmp_path, issuer)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert certificate.issuer == issuer
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_refused_port(refused_port: int) -> None:
    """Nothing listening is an error of class refused, not a requirement."""
    facts = _probe(refused_port)
    assert facts.status == "error"
    assert facts.error is not None
    assert facts.error.error_class == ErrorClass.refused
    assert facts.requirement.status == "not_probed"


def test_not_tls(http_server) -> None:
    """A plain-HTTP server is not_tls."""
    facts = _probe(http_server.port)
    assert facts.status == "error"
    assert facts.error is not None
    assert facts.error.error_class == ErrorClass.not_tls


def test_silent_server_times_out(silent_server) -> None:
    """A server that never answers the ClientHello is a timeout after one timeout."""
    facts = _probe(silent_server.port, timeout=0.5)
    assert facts.status == "error"
    assert facts.error is not None
    assert facts.error.error_class == ErrorClass.timeout


@pytest.mark.parametrize("version", VERSION_FLAGS)
def test_sslyze_fetches_the_chain_of_a_required_server(
    pki: ServerFiles, client: ClientPki, credentials: ClientCredentials, version: str
) -> None:
    """With the right client certificate, sslyze's handshake gets the chain a server requiring one sends."""
    with openssl_server(pki.cert, pki.key, *REQUIRED, "-CAfile", str(client.ca), VERSION_FLAGS[version]) as port:
        request = SslyzeRequest(
            endpoint=loopback_endpoint(port, credentials=credentials), extras=frozenset({Extra.certificate})
        )
        outcome = sslyze_adapter.scan_one(request)
    assert outcome is not None
    assert outcome.error is None
    assert isinstance(outcome.certificate, ServedCertificates), outcome.certificate
    served = x509.load_pem_x509_certificate(pki.cert.read_bytes())
    assert outcome.certificate.chain[0] == served


def test_encrypted_key_never_prompts(pki: ServerFiles, client: ClientPki) -> None:
    """Credentials whose key is still encrypted make that fact an error; OpenSSL never prompts on the terminal."""
    raw = ClientCredentials(cert_chain=client.cert, key=client.encrypted_key, description="client.pem")
    with openssl_server(pki.cert, pki.key, *REQUIRED, "-CAfile", str(client.ca), "-tls1_3") as port:
        facts = _probe(port, raw)
    assert facts.requirement.value == "required"
    assert facts.provided_certificate_accepted.status == "error"
    assert facts.provided_certificate_accepted.error is not None
    assert "cannot set up the client certificate or key" in facts.provided_certificate_accepted.error.message
