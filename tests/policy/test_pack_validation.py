"""Rule pack validation: a malformed pack is rejected whole, with file:line:column and a helpful message."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scanner.facts import Facts, ProtocolSupport
from scanner.policy.operators import LIST_OPERATORS, VALUE_OPERATORS
from scanner.policy.pack import PackError, builtin_pack_files, load_pack, resolve_pack
from scanner.yamlfile import Problem
from tests.helpers import REPO

ALL_CONSTRAINTS = ", ".join(sorted({*LIST_OPERATORS, *VALUE_OPERATORS}))

HEAD = """\
id: test-pack
title: Test pack
version: "1"
rules:
"""

GOOD_RULE = """\
  - id: OK-1
    title: TLS 1.3 is accepted
    severity: high
    fact: protocols
    some: {version: TLSv1.3, status: accepted}
"""


def write(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[Problem]:
    """Load a pack that must be rejected; return its problems after checking they name the file."""
    path = write(tmp_path, text)
    with pytest.raises(PackError) as caught:
        load_pack(path)
    found = caught.value.problems
    assert found, "a PackError must carry at least one problem"
    assert {p.file for p in found} == {str(path)}
    return found


def only(tmp_path: Path, text: str) -> Problem:
    """The single problem of a pack that must be rejected."""
    found = problems(tmp_path, text)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def rule(body: str) -> str:
    """A pack with the good rule first and ``body`` (a rule starting on line 10) second."""
    return HEAD + GOOD_RULE + textwrap.indent(textwrap.dedent(body), "  ")


def edited(old: str, new: str) -> str:
    """The good pack (HEAD and GOOD_RULE) with the first ``old`` in it replaced by ``new``."""
    return (HEAD + GOOD_RULE).replace(old, new, 1)


def second_rule(fact: str, rest: str = "", severity: str = "low") -> str:
    """A pack whose second rule, R-2 titled t, checks ``fact`` with the YAML lines ``rest`` (from line 14)."""
    head = f"- id: R-2\n  title: t\n  severity: {severity}\n  fact: {fact}\n"
    return rule(head + "".join(f"  {line}\n" for line in rest.splitlines()))


class Starts(str):
    """An expected message given by how it starts (the rest is the parser's wording or a long list)."""


# --- packs that load -------------------------------------------------------------------------------


def test_builtin_packs_all_load():
    """Every pack shipped in rules/ loads, is named after its file and has rules."""
    files = list(builtin_pack_files())
    assert [f.stem for f in files] == sorted(f.stem for f in (REPO / "rules").glob("*.yaml"))
    assert "tls13-only" in [f.stem for f in files]
    for file in files:
        pack = load_pack(file)
        assert pack.id == file.stem
        assert pack.rules
        assert len({r.id for r in pack.rules}) == len(pack.rules)


def test_tls13_only_pack_content():
    """The built-in tls13-only pack has its two rules with the constraints the policy documents."""
    pack = resolve_pack("tls13-only")
    assert [(r.id, r.severity, r.fact, r.operator) for r in pack.rules] == [
        ("TLS13ONLY-001", "high", "protocols", "each"),
        ("TLS13ONLY-002", "high", "protocols", "some"),
    ]
    assert pack.rules[0].where_spec == {"status": "accepted"}
    assert pack.rules[0].expected == {"version": "TLSv1.3"}
    assert len(pack.sha256) == 64


def test_good_pack_loads(tmp_path):
    """A small well-formed pack loads with its rule and source."""
    pack = load_pack(write(tmp_path, HEAD + GOOD_RULE))
    assert pack.id == "test-pack"
    assert pack.version == "1"
    assert [r.id for r in pack.rules] == ["OK-1"]


# --- whole-file problems ---------------------------------------------------------------------------


# Each case: a pack with one mistake outside its rules (or in a rule's id), the position its single problem is
# reported at, and its message (whole, or how it starts when the rest is the YAML parser's own wording). Checked
# with BAD_RULES by test_one_mistake_is_one_problem.
BAD_PACKS = [
    # An unclosed flow sequence is a YAML syntax problem at the point the parser gave up.
    pytest.param(
        HEAD + "  - [id: A-1\n",
        (6, 1),
        Starts("YAML syntax: "),
        id="yaml-syntax-error",
    ),
    # A mapping value that breaks indentation is reported on its own line.
    pytest.param(
        "id: test-pack\ntitle: T\n  version: 1\n",
        (3, 10),
        "YAML syntax: mapping values are not allowed here",
        id="yaml-syntax-error-bad-indentation",
    ),
    # 'rules: []' is rejected at the empty list.
    pytest.param(
        HEAD.replace("rules:\n", "rules: []\n"),
        (4, 8),
        "'rules' must be a non-empty list",
        id="empty-rules",
    ),
    # A misspelt top-level key is reported on the key with a 'did you mean' hint.
    pytest.param(
        HEAD + GOOD_RULE + "rulez: []\n",
        (10, 1),
        "unknown pack key 'rulez' (did you mean 'rules'?)",
        id="unknown-top-level-key-with-hint",
    ),
    # A misspelt key under 'source' is reported on that key with a hint.
    pytest.param(
        edited("rules:\n", "source:\n  documnet: RFC 8446\nrules:\n"),
        (5, 3),
        "unknown source key 'documnet' (did you mean 'document'?)",
        id="unknown-source-key",
    ),
    # A lower-case rule id is reported on its value.
    pytest.param(
        edited("id: OK-1", "id: ok-1"),
        (5, 9),
        "rule id 'ok-1' must be upper case letters, digits, '.', '_' or '-'",
        id="bad-rule-id",
    ),
    # An unknown YAML tag is a problem at the value, not a crash.
    pytest.param(
        edited("title: Test pack", "title: !secret Test pack"),
        (2, 8),
        "YAML value: could not determine a constructor for the tag '!secret'",
        id="unknown-yaml-tag",
    ),
    # A value YAML reads as an impossible date is a problem at the value, not a crash.
    pytest.param(
        edited("rules:\n", "source:\n  date: 2021-02-30\nrules:\n"),
        (5, 9),
        "YAML value '2021-02-30': day is out of range for month",
        id="impossible-date",
    ),
    # A YAML alias inside the node it names is a problem, not endless recursion.
    pytest.param(
        edited("rules:\n", "source: &loop {note: *loop}\nrules:\n"),
        (4, 9),
        "YAML alias refers to a node that contains it",
        id="recursive-alias",
    ),
]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path, text):
    """An empty (or comment-only) file is one 'pack is empty' problem at 1:1."""
    problem = only(tmp_path, text)
    assert (problem.line, problem.column, problem.message) == (1, 1, "pack is empty")


@pytest.mark.parametrize("text", ["- id: a\n- id: b\n", "just text\n", "42\n"])
def test_top_level_not_a_mapping(tmp_path, text):
    """A pack that is a list or a scalar is rejected with what a pack must be."""
    problem = only(tmp_path, text)
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message == "a rule pack must be a YAML mapping with id, title, version and rules"


def test_missing_required_pack_keys(tmp_path):
    """Each missing top-level key is its own problem at the start of the pack mapping."""
    found = problems(tmp_path, "# a pack with only a description\ndescription: nothing else\n")
    assert [(p.line, p.column, p.message) for p in found] == [
        (2, 1, "pack is missing 'id'"),
        (2, 1, "pack is missing 'title'"),
        (2, 1, "pack is missing 'version'"),
        (2, 1, "pack is missing 'rules'"),
    ]


@pytest.mark.parametrize("pack_id", ["Bad_Id", "-lead", '"abc\\n"'])
def test_bad_pack_id(tmp_path, pack_id):
    """A pack id that is not lower case letters, digits and '-' (a trailing newline included) is rejected."""
    problem = only(tmp_path, HEAD.replace("id: test-pack", f"id: {pack_id}") + GOOD_RULE)
    assert (problem.line, problem.column) == (1, 5)
    assert problem.message.startswith("pack id ")
    assert problem.message.endswith(" must be lower case letters, digits and '-'")


# --- rule problems ---------------------------------------------------------------------------------


def test_rule_missing_severity(tmp_path):
    """A rule without severity is reported at the start of that rule."""
    problem = only(tmp_path, rule("""\
        - id: R-2
          title: no severity
          fact: protocols
          some: {version: TLSv1.3}
        """))  # fmt: skip
    assert (problem.line, problem.column, problem.message) == (10, 5, "rule is missing 'severity'")


def test_rule_missing_several_keys(tmp_path):
    """A rule missing id, title and fact gets one problem per missing key."""
    found = problems(tmp_path, rule("""\
        - severity: low
          some: {version: TLSv1.3}
        """))  # fmt: skip
    assert [(p.line, p.column, p.message) for p in found] == [
        (10, 5, "rule is missing 'id'"),
        (10, 5, "rule is missing 'title'"),
        (10, 5, "rule is missing 'fact'"),
    ]


# Each case: a second rule R-2 (line 10: "- id" on 10, title 11, severity 12, fact 13, the rest from 14) with one
# mistake, the position its single problem is reported at, and its message (whole, or how it starts when the rest
# is the parser's own wording or a long list).
FACT_NAMES = ", ".join(sorted(Facts.model_fields))
PROTOCOL_FIELDS = ", ".join(sorted(ProtocolSupport.model_fields))
NESTED_PATH_PROBLEM = (
    "unknown fact path 'certificate.leaf.public_key.sise': no 'sise' (did you mean 'size'?); "
    "names here: curve, size, type"
)
VALUE_ON_LIST_PROBLEM = (
    "'equals' applies to single values; this fact is a list of objects "
    "(use each/some/none/only/forbid/require_any/require_all)"
)
BAD_RULES = [
    # An unknown severity is reported on its value with the allowed ones.
    pytest.param(
        second_rule("protocols", "some: {version: TLSv1.3}", severity="urgent"),
        (12, 15),
        "severity 'urgent' is not one of critical, high, medium, low, info",
        id="bad-severity",
    ),
    # A misspelt rule key is reported on the key with a hint.
    pytest.param(
        second_rule("protocols", "some: {version: TLSv1.3}\nremedation: upgrade"),
        (15, 5),
        "unknown rule key 'remedation' (did you mean 'remediation'?)",
        id="unknown-rule-key",
    ),
    # 'protocol' is reported on the fact with a hint to 'protocols' and every name that exists.
    pytest.param(
        second_rule("protocol", "some: {version: TLSv1.3}"),
        (13, 11),
        f"unknown fact path 'protocol': no 'protocol' (did you mean 'protocols'?); names here: {FACT_NAMES}",
        id="unknown-fact-path",
    ),
    # A misspelt step deep in a path names the step and the fields at that level.
    pytest.param(
        second_rule("certificate.leaf.public_key.sise", "min: 2048"),
        (13, 11),
        NESTED_PATH_PROBLEM,
        id="unknown-nested-fact-path",
    ),
    # A misspelt field inside 'each' is reported on the field with a hint and the fields that exist.
    pytest.param(
        second_rule("protocols", "each: {verison: TLSv1.3}"),
        (14, 12),
        f"unknown field 'verison' (did you mean 'version'?); fields here: {PROTOCOL_FIELDS}",
        id="unknown-field-in-each",
    ),
    # A misspelt field inside 'where' is reported on the field with a hint.
    pytest.param(
        second_rule("protocols", "where:\n  statsu: accepted\neach: {version: TLSv1.3}"),
        (15, 7),
        Starts("unknown field 'statsu' (did you mean 'status'?); fields here: "),
        id="unknown-field-in-where",
    ),
    # 'where' on a fact that is not a list of objects is reported on 'where'.
    pytest.param(
        second_rule("certificate.leaf.public_key.size", "where: {type: RSA}\nmin: 2048"),
        (14, 12),
        "'where' filters lists of objects; this fact is not one",
        id="where-on-a-scalar-fact",
    ),
    # 'TLSv1.4' is reported on the value as something that can never occur, with the real versions.
    pytest.param(
        second_rule("protocols", "each: {version: TLSv1.4}"),
        (14, 21),
        "'TLSv1.4' can never occur here: expected one of SSLv2, SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3",
        id="impossible-enum-value",
    ),
    # An impossible key type on a scalar fact is reported on the 'equals' value, not the rule start.
    pytest.param(
        second_rule("certificate.leaf.public_key.type", "equals: RSAA"),
        (14, 13),
        "'RSAA' can never occur here: expected one of RSA, EC, DSA, Ed25519, Ed448, unknown",
        id="impossible-literal-value-on-scalar-fact",
    ),
    # An impossible status inside an 'in' list is reported on that 'in'.
    pytest.param(
        second_rule("protocols", "none: {status: {in: [accepted, acepted]}}"),
        (14, 25),
        "'acepted' can never occur here: expected one of accepted, not_accepted, error",
        id="impossible-value-in-list-operator",
    ),
    # '{version: {eq: TLSv1.3}}' is reported on 'eq' and lists the operators that exist.
    pytest.param(
        second_rule("protocols", "each: {version: {eq: TLSv1.3}}"),
        (14, 22),
        f"unknown operator 'eq'; operators: {', '.join(VALUE_OPERATORS)}",
        id="unknown-operator-in-matcher",
    ),
    # A near miss such as 'mtaches' gets a 'did you mean' hint.
    pytest.param(
        second_rule("certificate.leaf.subject_alt_names", 'each: {mtaches: "DNS:.*"}'),
        (14, 12),
        "unknown operator 'mtaches' (did you mean 'matches'?)",
        id="unknown-operator-with-hint",
    ),
    # '{version: {}}' would match anything; it is rejected on the empty mapping.
    pytest.param(
        second_rule("protocols", "some: {version: {}}"),
        (14, 21),
        Starts("expects at least one operator"),
        id="empty-matcher",
    ),
    # A rule with no constraint is reported at the rule with the operators to choose from.
    pytest.param(
        second_rule("protocols"),
        (10, 5),
        f"a rule needs exactly one constraint, one of: {ALL_CONSTRAINTS}",
        id="no-constraint",
    ),
    # 'each' on the key size is reported on 'each'.
    pytest.param(
        second_rule("certificate.leaf.public_key.size", "each: {min: 2048}"),
        (14, 11),
        "'each' applies to lists; this fact is a single value",
        id="list-operator-on-scalar-fact",
    ),
    # 'equals' on protocols is reported on 'equals' with the list operators to use instead.
    pytest.param(
        second_rule("protocols", "equals: TLSv1.3"),
        (14, 13),
        VALUE_ON_LIST_PROBLEM,
        id="value-operator-on-list-fact",
    ),
    # 'only' on protocols (objects) is reported on 'only', pointing to each/some/none.
    pytest.param(
        second_rule("protocols", "only: [TLSv1.3]"),
        (14, 11),
        "'only' compares plain values; for a list of objects use each/some/none",
        id="only-on-list-of-objects",
    ),
    # 'require_any' with a single string instead of a list is reported on its value.
    pytest.param(
        second_rule("certificate.leaf.subject_alt_names", 'require_any: "DNS:example.com"'),
        (14, 18),
        "'require_any' expects a list of values",
        id="values-operator-needs-a-list",
    ),
    # 'min: big' is reported on the value as needing a number.
    pytest.param(
        second_rule("certificate.leaf.public_key.size", "min: big"),
        (14, 10),
        "'min' expects a number",
        id="min-with-non-number",
    ),
    # 'min: true' is not a number even though Python's bool is an int.
    pytest.param(
        second_rule("certificate.leaf.public_key.size", "min: true"),
        (14, 10),
        "'min' expects a number",
        id="min-with-boolean",
    ),
    # An unbalanced parenthesis in 'matches' is reported on the pattern with the regex error.
    pytest.param(
        second_rule("certificate.leaf.subject", 'matches: "CN=(foo"'),
        (14, 14),
        Starts("'matches' invalid regular expression: missing ), unterminated subpattern"),
        id="invalid-regex",
    ),
    # An invalid regex nested in 'each' is reported on the nested pattern.
    pytest.param(
        second_rule("certificate.chain", 'each: {subject: {matches: "[a-"}}'),
        (14, 31),
        Starts("'matches' invalid regular expression: "),
        id="invalid-regex-in-field-matcher",
    ),
    # A date operator takes a date or scan_time; another word (today, now) is reported with both forms.
    pytest.param(
        second_rule("certificate.leaf.not_after", "after: now"),
        (14, 12),
        "'after' expects a date such as 2026-03-15 (or an ISO 8601 time, or scan_time)",
        id="date-operator-with-word",
    ),
]


@pytest.mark.parametrize(("text", "at", "message"), [*BAD_PACKS, *BAD_RULES])
def test_one_mistake_is_one_problem(tmp_path, text, at, message):
    """A pack with one mistake is one problem, at the place of the mistake, saying what is wrong."""
    problem = only(tmp_path, text)
    assert (problem.line, problem.column) == at
    if isinstance(message, Starts):
        assert problem.message.startswith(message)
    else:
        assert problem.message == message


@pytest.mark.parametrize("fact", ["[protocols]", "~", "42"])
def test_fact_not_a_string(tmp_path, fact):
    """A fact that is a list, null or a number is a problem; the rule is never silently dropped."""
    problem = only(tmp_path, second_rule(fact, "some: {version: TLSv1.3}"))
    assert (problem.line, problem.column) == (13, 11)
    assert problem.message.startswith("'fact' must be a dotted path")


def test_two_constraints(tmp_path):
    """A rule with both 'each' and 'some' is reported at the rule, naming both."""
    problem = only(tmp_path, second_rule("protocols", "each: {version: TLSv1.3}\nsome: {version: TLSv1.3}"))
    assert (problem.line, problem.column) == (10, 5)
    assert problem.message.startswith("a rule needs exactly one constraint, one of: " + ALL_CONSTRAINTS)
    assert problem.message.endswith(" (found each, some)")


def test_no_constraint_still_checks_fact(tmp_path):
    """A rule with no constraint and a bad fact path reports both problems, not only the first."""
    found = problems(tmp_path, second_rule("protocol"))
    assert [(p.line, p.column) for p in found] == [(10, 5), (13, 11)]
    assert found[0].message.startswith("a rule needs exactly one constraint")
    assert found[1].message.startswith("unknown fact path 'protocol'")


def test_duplicate_rule_id(tmp_path):
    """A repeated rule id is reported on the second rule's id, naming the first."""
    problem = only(tmp_path, rule("""\
        - id: OK-1
          title: again
          severity: low
          fact: protocols
          some: {version: TLSv1.3}
        """))  # fmt: skip
    assert (problem.line, problem.column) == (10, 9)
    assert problem.message == "duplicate rule id 'OK-1' (first at rule 1)"


def test_duplicate_yaml_key(tmp_path):
    """A key written twice in one mapping is reported on the second occurrence."""
    problem = only(tmp_path, rule("""\
        - id: R-2
          title: t
          severity: low
          title: u
          fact: protocols
          some: {version: TLSv1.3}
        """))  # fmt: skip
    assert (problem.line, problem.column, problem.message) == (13, 5, "duplicate key 'title'")


def test_several_problems_all_reported_sorted(tmp_path):
    """Every problem in a file is reported, sorted by line, and no partial pack is returned."""
    text = """\
        id: Bad_Id
        title: Several problems
        version: "1"
        rules:
          - id: R-1
            title: unknown fact
            severity: high
            fact: protocol
            some: {version: TLSv1.3}
          - id: R-2
            title: good rule
            severity: high
            fact: protocols
            some: {version: TLSv1.3}
          - id: R-3
            title: bad severity and impossible version
            severity: severe
            fact: protocols
            each: {version: TLSv1.4}
        extra: true
        """
    found = problems(tmp_path, text)
    assert [(p.line, p.column) for p in found] == [(1, 5), (8, 11), (17, 15), (19, 21), (20, 1)]
    assert found[0].message.startswith("pack id 'Bad_Id'")
    assert found[1].message.startswith("unknown fact path 'protocol'")
    assert found[2].message.startswith("severity 'severe'")
    assert found[3].message.startswith("'TLSv1.4' can never occur here")
    assert found[4].message == "unknown pack key 'extra'"


def test_one_bad_rule_rejects_whole_pack(tmp_path):
    """A pack with one good and one bad rule raises rather than returning the good rule alone."""
    path = write(tmp_path, second_rule("protocols", "each: {version: TLSv1.4}"))
    with pytest.raises(PackError) as caught:
        load_pack(path)
    assert len(caught.value.problems) == 1
    assert str(caught.value) == str(caught.value.problems[0])


def test_problem_str_format():
    """A Problem prints as file:line:column: message, the form editors and CI logs link."""
    assert str(Problem("p.yaml", 3, 7, "bad")) == "p.yaml:3:7: bad"


def test_unreadable_pack(tmp_path):
    """A pack path that is a directory is a PackError, not an OSError."""
    with pytest.raises(PackError) as caught:
        load_pack(tmp_path)
    (problem,) = caught.value.problems
    assert problem.message.startswith("cannot read pack: ")


def test_not_utf8(tmp_path):
    """A pack that is not UTF-8 is one problem at 1:1."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("id: caf\xe9\n".encode("latin-1"))
    with pytest.raises(PackError) as caught:
        load_pack(path)
    assert [(p.line, p.column, p.message) for p in caught.value.problems] == [
        (1, 8, "pack is not UTF-8 text: byte 0xe9 cannot be here")
    ]


# --- the command line ------------------------------------------------------------------------------


def test_cli_reports_bad_pack_and_exits_2(tmp_path):
    """'scan --pack BAD.yaml' exits 2 before scanning, printing one file:line:col line per problem."""
    path = write(tmp_path, second_rule("protocol", "some: {version: TLSv1.3}", severity="urgent"), name="BAD.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "scanner.cli", "scan", "127.0.0.1:1", "--pack", str(path)],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0] == (
        f"tlsgate: error: {path}:12:15: severity 'urgent' is not one of critical, high, medium, low, info"
    )
    assert lines[1].startswith(
        f"tlsgate: error: {path}:13:11: unknown fact path 'protocol': "
        "no 'protocol' (did you mean 'protocols'?); names here: " + FACT_NAMES
    )


def test_cli_reports_yaml_crash_cases_as_usage_error(tmp_path):
    """A pack with an unknown YAML tag exits 2 with its position, not as an internal error (exit 5)."""
    path = write(tmp_path, HEAD.replace("title: Test pack", "title: !secret x") + GOOD_RULE, name="BAD.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "scanner.cli", "scan", "127.0.0.1:1", "--pack", str(path)],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        f"tlsgate: error: {path}:2:8: YAML value: could not determine a constructor for the tag '!secret'\n"
    )
