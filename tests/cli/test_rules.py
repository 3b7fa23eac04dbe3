"""tlsgate rules validate / show / list: packs checked whole and explained in words."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from scanner.exitcodes import ExitCode
from scanner.policy.pack import builtin_pack_files, load_pack


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


BROKEN = """\
id: broken-pack
title: Broken
version: "1"
rules:
  - id: GOOD-1
    title: TLS 1.3 is accepted
    severity: high
    fact: protocols
    some: {version: TLSv1.3, status: accepted}
  - id: BAD-1
    title: a typo in the fact path
    severity: high
    fact: certificate.leaf.public_key.sise
    min: 2048
  - id: BAD-2
    title: a word where a number belongs
    severity: high
    fact: certificate.leaf.public_key.size
    min: big
  - id: BAD-3
    title: an operator that does not exist
    severity: low
    fact: certificate.leaf.public_key.size
    at_least: 2048
  - id: GOOD-1
    title: the same id again
    severity: low
    fact: protocols
    none: {version: SSLv3}
"""

PARAMS = """\
id: key-size
title: Leaf key size
version: "2.1"
source:
  document: "Our partner integration guide"
  section: "4.2 Certificates"
  url: "https://partner.example/guide"
  date: "2026-01"
  note: "Agreed with the partner's security team."
description: The leaf certificate's key is large enough for the partner.
params:
  min_bits: {default: 2048, description: "Smallest RSA modulus accepted, in bits."}
  cn_regex: {default: "UNSET", description: "Regular expression the leaf's common name matches."}
rules:
  - id: KEY-001
    title: The leaf key is large enough
    severity: high
    fact: certificate.leaf.public_key.size
    min: {param: min_bits}
    when: {fact: certificate.leaf.public_key.type, equals: RSA}
    rationale: Short keys are factored.
    remediation: Issue a new certificate with a longer key.
    references: ["https://partner.example/guide#4.2"]
  - id: KEY-002
    title: Only the partner's ALPN protocols
    severity: low
    fact: behaviours.alpn
    only: [h2, http/1.1]
  - id: KEY-003
    title: The leaf names the partner
    severity: medium
    fact: certificate.leaf.subject_fields.common_name
    matches: {param: cn_regex}
"""


def test_validate_builtin_packs(tlsgate):
    """Every built-in pack file validates: one OK line each with its id and rule count, exit 0."""
    files = list(builtin_pack_files())
    assert files
    run = tlsgate("rules", "validate", *map(str, files))
    assert run.code == ExitCode.OK, run.stderr
    assert run.stderr == ""
    for file in files:
        pack = load_pack(file)
        assert f"OK {file} ({pack.id}, {len(pack.rules)} rule" in run.stdout


def test_validate_builtin_pack_by_id(tlsgate):
    """A built-in pack can be validated by its id as well as by its file."""
    run = tlsgate("rules", "validate", "tls13-only")
    assert run.code == ExitCode.OK, run.stderr
    assert run.stdout.startswith("OK tls13-only (tls13-only, ")


def test_validate_reports_every_problem_with_position(tlsgate, tmp_path):
    """A pack with several problems gets one file:line:column line each with a hint, and exit 2."""
    path = _write(tmp_path / "broken.yaml", BROKEN)
    run = tlsgate("rules", "validate", str(path))
    assert run.code == ExitCode.USAGE, run.stdout + run.stderr
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert "Traceback" not in run.stderr
    expected = [
        f"{path}:13:11: unknown fact path 'certificate.leaf.public_key.sise': no 'sise' (did you mean 'size'?)",
        f"{path}:19:10: 'min' expects a number",
        f"{path}:24:5: unknown rule key 'at_least'",
        f"{path}:25:9: duplicate rule id 'GOOD-1' (first at rule 1)",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    position = re.compile(rf"^{re.escape(str(path))}:\d+:\d+: ")
    problems = [line for line in lines if not line.startswith("tlsgate:")]
    assert all(position.match(line) for line in problems), problems
    assert lines[-1] == f"tlsgate: error: {len(problems)} problems in 1 of 1 pack file"


def test_validate_several_files(tlsgate, tmp_path):
    """Good and bad files together: OK for the good, problems for the bad, a missing file named, exit 2."""
    good = _write(tmp_path / "good.yaml", PARAMS)
    bad = _write(tmp_path / "broken.yaml", BROKEN)
    missing = tmp_path / "missing.yaml"
    run = tlsgate("rules", "validate", str(good), str(bad), str(missing))
    assert run.code == ExitCode.USAGE
    assert run.stdout == f"OK {good} (key-size, 3 rules)\n"
    assert f"{missing}: cannot read pack: No such file or directory" in run.stderr.splitlines()
    assert run.stderr.splitlines()[-1].endswith("in 2 of 3 pack files")


def test_validate_cyclic_extends(tlsgate, tmp_path):
    """Two packs that extend each other are rejected with the cycle spelled out."""
    for me, other in (("a", "b"), ("b", "a")):
        _write(tmp_path / f"{me}.yaml", f"""\
            id: pack-{me}
            title: Pack {me}
            version: "1"
            extends: {other}.yaml
            rules:
              - {{id: {me.upper()}-1, title: x, severity: low, fact: protocols, some: {{version: TLSv1.3}}}}
            """)  # fmt: skip
    run = tlsgate("rules", "validate", str(tmp_path / "a.yaml"))
    assert run.code == ExitCode.USAGE
    assert f"{tmp_path / 'a.yaml'}:4:10: " in run.stderr
    assert "cyclic 'extends'" in run.stderr


def test_validate_help_documents_exit_codes(tlsgate):
    """rules validate --help says what 0 and 2 mean."""
    run = tlsgate("rules", "validate", "--help")
    assert run.code == 0
    assert "0  every FILE is a valid rule pack" in run.stdout
    assert "2  at least one FILE has a problem" in run.stdout


def test_show_builtin_pack(tlsgate):
    """rules show prints the title, source, and each rule with its constraint in words, rationale and references."""
    run = tlsgate("rules", "show", "tls13-only")
    assert run.code == ExitCode.OK, run.stderr
    out = run.stdout
    assert out.startswith("TLS 1.3 only\n")
    for text in ("id:      tls13-only", "version: 1.0.0", "Source", "document: RFC 8446",
                 "url:      https://www.rfc-editor.org/rfc/rfc8446", "Rules (2)",
                 "[high] TLS13ONLY-001 No protocol version other than TLS 1.3 is accepted",
                 "[high] TLS13ONLY-002 TLS 1.3 is accepted", "https://www.rfc-editor.org/rfc/rfc8996"):  # fmt: skip
        assert text in out, text
    words = " ".join(out.split())
    assert (
        "fact protocols: every element (of those where status must equal accepted) must satisfy: "
        "version must equal TLSv1.3" in words
    )
    assert "at least one element must satisfy: version must equal TLSv1.3, status must equal accepted" in words
    assert "Rationale: Older versions keep weaker handshakes" in words
    assert "Remediation: Set the server's minimum protocol version to TLS 1.3" in words
    assert max(len(line) for line in out.splitlines()) <= 100


def test_show_pack_file_with_params_and_when(tlsgate, tmp_path):
    """A pack file shows its source, parameters with defaults, the rule's condition and value-list words."""
    path = _write(tmp_path / "keys.yaml", PARAMS)
    run = tlsgate("rules", "show", str(path))
    assert run.code == ExitCode.OK, run.stderr
    words = " ".join(run.stdout.split())
    for text in (
        "Leaf key size",
        f"file: {path}",
        "section: 4.2 Certificates",
        "note: Agreed with the partner's security team.",
        "min_bits = 2048 Smallest RSA modulus accepted, in bits.",
        "[high] KEY-001 The leaf key is large enough",
        "fact certificate.leaf.public_key.size must be at least 2048",
        "only when: fact certificate.leaf.public_key.type must equal RSA",
        "fact behaviours.alpn must contain only values from [h2, http/1.1]",
        "References: https://partner.example/guide#4.2",
    ):
        assert text in words, text
    run = tlsgate("rules", "show", str(path), "--param", "min_bits=4096")
    assert run.code == ExitCode.OK, run.stderr
    words = " ".join(run.stdout.split())
    assert "min_bits = 2048 (this run: 4096)" in words
    assert "must be at least 4096" in words


def test_show_param_values(tlsgate, tmp_path):
    """--param values are YAML where they parse and text where they do not (a regular expression here)."""
    path = _write(tmp_path / "keys.yaml", PARAMS)
    run = tlsgate(
        "rules", "show", str(path), "--param", r"cn_regex=[a-z]+\.partner\.example", "--param", "min_bits=3072"
    )
    assert run.code == ExitCode.OK, run.stderr
    words = " ".join(run.stdout.split())
    assert r"cn_regex = UNSET (this run: '[a-z]+\.partner\.example')" in words
    assert r"fact certificate.leaf.subject_fields.common_name must match [a-z]+\.partner\.example" in words
    run = tlsgate("rules", "show", str(path), "--param", "key-size.cn_regex=[unclosed")
    assert run.code == ExitCode.USAGE
    assert "invalid regular expression" in run.stderr


def test_show_unknown_or_invalid_pack(tlsgate, tmp_path):
    """rules show of an unknown id is one line and exit 2; of a broken file, its problems and exit 2."""
    run = tlsgate("rules", "show", "tls13-onyl")
    assert run.code == ExitCode.USAGE
    (line,) = run.stderr.splitlines()
    assert "unknown pack 'tls13-onyl' (did you mean 'tls13-only'?)" in line
    path = _write(tmp_path / "broken.yaml", BROKEN)
    run = tlsgate("rules", "show", str(path))
    assert run.code == ExitCode.USAGE
    assert run.stdout == ""
    assert f"{path}:19:10: 'min' expects a number" in run.stderr


def test_list_builtin_packs(tlsgate):
    """rules list names every built-in pack with its version and rule count."""
    run = tlsgate("rules", "list")
    assert run.code == ExitCode.OK, run.stderr
    for file in builtin_pack_files():
        pack = load_pack(file)
        assert re.search(
            rf"^{re.escape(pack.id)}\s+{re.escape(pack.version)}\s+{len(pack.rules)} rules", run.stdout, re.M
        )
