"""Inventories, target lists and standard input: per-target packs, tags, and file:line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jsonschema
import pytest
import yaml

from scanner.schemas import schema_dir
from tests.helpers import REPO


def _write(path, text):
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _findings_packs(report):
    return {t["target"]: sorted({f["pack"] for f in t["findings"]}) for t in report["targets"]}


def test_three_targets_with_a_pack_of_their_own(tlsgate, tls13_server, tls12_13_server, refused_port, tmp_path):
    """Three inventory targets: the default pack judges two, the third is judged only by its own pack."""
    inventory = _write(
        tmp_path / "inv.yaml",
        f"""
        defaults:
          packs: [tls13-only]
          timeout: 3
        targets:
          - name: modern
            target: {tls13_server.target}
          - name: legacy
            target: {tls12_13_server.target}
            packs: [tls12-plus]
          - name: gone
            host: 127.0.0.1
            port: {refused_port}
        """,
    )
    out = tmp_path / "r.json"
    run = tlsgate("scan", "--inventory", str(inventory), "--json", str(out))
    report = json.loads(out.read_text())
    jsonschema.validate(report, json.loads((schema_dir() / "report.schema.json").read_text()))
    assert _findings_packs(report) == {"modern": ["tls13-only"], "legacy": ["tls12-plus"], "gone": ["tls13-only"]}
    assert [p["id"] for p in report["packs"]] == ["tls13-only", "tls12-plus"]
    verdicts = {t["target"]: t["verdict"] for t in report["targets"]}
    assert verdicts["modern"] == "pass" and verdicts["gone"] == "error"
    # with tls13-only the TLS 1.2 server would have failed; its own pack decides
    assert not any(
        f["status"] == "fail" and f["pack"] == "tls13-only" for t in report["targets"] for f in t["findings"]
    )
    assert run.code in (0, 1, 3), run.stderr


def test_targets_without_packs_take_the_default_pack(tlsgate, tls13_server, refused_port, tmp_path):
    """Inventory targets that name no packs, scanned without --pack, are judged by the default pack, baseline."""
    inventory = _write(
        tmp_path / "inv.yaml",
        f"""
        targets:
          - name: up
            target: {tls13_server.target}
          - name: gone
            target: 127.0.0.1:{refused_port}
        """,
    )
    out = tmp_path / "r.json"
    run = tlsgate("scan", "--inventory", str(inventory), "--timeout", "3", "--json", str(out))
    report = json.loads(out.read_text())
    assert _findings_packs(report) == {"up": ["essentials"], "gone": ["essentials"]}
    assert [p["id"] for p in report["packs"]] == ["essentials"]
    # the test server's CA is in no store: the default pack fails its chain, which outranks "gone"
    assert run.code == 1, run.stderr


def test_tag_selects_targets_and_groups(tlsgate, tls13_server, refused_port, tmp_path):
    """--tag scans only targets with any given tag, a group's name being a tag of its targets."""
    inventory = _write(
        tmp_path / "inv.yaml",
        f"""
        groups:
          edge:
            tags: [prod]
            targets:
              - name: front
                target: {tls13_server.target}
        targets:
          - name: old
            target: 127.0.0.1:{refused_port}
            tags: [lab]
        """,
    )
    out = tmp_path / "r.json"
    run = tlsgate("scan", "--pack", "tls13-only", "--inventory", str(inventory), "--tag", "edge", "--tag", "nothing",
                  "--json", str(out))  # fmt: skip
    assert run.code == 0, run.stderr
    assert [t["target"] for t in json.loads(out.read_text())["targets"]] == ["front"]
    run = tlsgate("scan", "--pack", "tls13-only", "--inventory", str(inventory), "--tag", "lab", "--json", str(out))
    assert run.code == 3, run.stderr
    assert [t["target"] for t in json.loads(out.read_text())["targets"]] == ["old"]
    run = tlsgate("scan", "--pack", "tls13-only", "--inventory", str(inventory), "--tag", "qa")
    assert run.code == 2
    assert "no target has the tag 'qa' (tags in it: edge, lab, prod)" in run.stderr


def test_targets_file_with_comments(tlsgate, tls13_server, tmp_path):
    """A targets file's comments and blank lines are skipped and its targets scanned."""
    listing = _write(tmp_path / "targets.txt", f"# our endpoints\n\n{tls13_server.target}  # the API\n")
    out = tmp_path / "r.json"
    run = tlsgate("scan", "--pack", "tls13-only", "--targets-file", str(listing), "--json", str(out))
    assert run.code == 0, run.stderr
    assert [t["target"] for t in json.loads(out.read_text())["targets"]] == [tls13_server.target]


def test_targets_from_stdin(tls13_server, refused_port, tmp_path):
    """--targets-file - reads the targets from standard input."""
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "scanner.cli", "scan", "--pack", "tls13-only", "--targets-file", "-", "--json", str(out),
         "--timeout", "3"],
        input=f"{tls13_server.target}\n127.0.0.1:{refused_port}\n",
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    targets = json.loads(out.read_text())["targets"]
    assert [t["verdict"] for t in targets] == ["pass", "error"]


def test_bad_targets_file_line(tlsgate, tmp_path):
    """A bad line of a targets file is reported as file:line:column and nothing is scanned."""
    listing = _write(tmp_path / "t.txt", "# list\n127.0.0.1:8443\n   host:99999\n")
    run = tlsgate("scan", "--targets-file", str(listing))
    assert run.code == 2
    assert f"{listing}:3:4: bad target 'host:99999': port 99999 is out of range 1-65535" in run.stderr


def test_bad_inventory_reports_every_problem_with_position(tlsgate, tmp_path):
    """Unknown keys (with a hint), a bad target, a missing credentials file and an inline password: file:line:col."""
    inventory = _write(
        tmp_path / "inv.yaml",
        """
        defaults:
          packz: [tls13-only]
        targets:
          - name: a
            target: "bad host:443"
          - name: b
            target: 127.0.0.1:8443
            client:
              cert: missing.pem
              key: missing.key
              password: hunter2
        """,
    )
    run = tlsgate("scan", "--inventory", str(inventory))
    assert run.code == 2
    lines = [line.removeprefix("tlsgate: error: ") for line in run.stderr.splitlines()]
    assert lines == [
        f"{inventory}:2:3: unknown defaults key 'packz' (did you mean 'packs'?)",
        f"{inventory}:5:13: bad target 'bad host:443': 'bad host' is not a valid host name or IP address",
        f"{inventory}:9:13: cert file 'missing.pem' does not exist (looked for {tmp_path / 'missing.pem'})",
        f"{inventory}:10:12: key file 'missing.key' does not exist (looked for {tmp_path / 'missing.key'})",
        f"{inventory}:11:7: a password is never written in an inventory (files get committed and shared): "
        "name the environment variable that holds it with 'password_env', or a file with 'password_file'",
    ]
    assert "hunter2" not in run.stderr


def test_unknown_pack_and_parameter_in_inventory(tlsgate, tmp_path):
    """An unknown pack and a parameter no pack takes are reported at their line, with did-you-mean."""
    inventory = _write(
        tmp_path / "inv.yaml",
        """
        targets:
          - name: a
            target: 127.0.0.1:8443
            packs: [tls13-onli]
          - name: b
            target: 127.0.0.1:8444
            packs: [pci-dss-4]
            params:
              allow_tls1: true
        """,
    )
    run = tlsgate("scan", "--inventory", str(inventory))
    assert run.code == 2
    assert f"{inventory}:4:13: unknown pack 'tls13-onli' (did you mean 'tls13-only'?)" in run.stderr
    assert f"{inventory}:9:7: parameter 'allow_tls1': no pack of the targets it applies to takes it" in run.stderr
    assert "(did you mean 'allow_tls11'?)" in run.stderr


def test_no_targets_at_all_is_a_usage_error(tlsgate):
    """scan with neither TARGETs, --inventory nor --targets-file exits 2 and says what to give."""
    run = tlsgate("scan")
    assert run.code == 2
    assert "no target" in run.stderr


def test_documented_example_matches_the_schema():
    """The example inventory in docs/inventory.md validates against the published inventory schema."""
    text = (REPO / "docs" / "inventory.md").read_text(encoding="utf-8")
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    schema = json.loads((schema_dir() / "inventory.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(example), schema)
    bad = {"targets": [{"target": "a:1", "client": {"cert": "c.pem", "password": "x"}}]}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)


def test_zone_is_inherited_and_checked(tmp_path):
    """`zone` comes from the target, else its group, else defaults; a name Dask cannot take is reported at its line."""
    from scanner.probe.options import ConnectOptions  # noqa: PLC0415
    from scanner.targets.inventory import InventoryError  # noqa: PLC0415
    from scanner.targets.planning import plan  # noqa: PLC0415
    from scanner.targets.reader import load_inventory  # noqa: PLC0415

    inventory = _write(
        tmp_path / "inv.yaml",
        """
        defaults:
          zone: office
        groups:
          dmz:
            zone: dmz
            targets:
              - target: 127.0.0.1:1
              - {target: 127.0.0.1:2, zone: inner}
        targets:
          - target: 127.0.0.1:3
        """,
    )
    loaded = load_inventory(inventory)
    planned = plan(loaded, loaded.targets, ["essentials"], [], ConnectOptions(), tmp_path)
    assert [p.connect.zone for p in planned] == ["dmz", "inner", "office"]
    bad = _write(tmp_path / "bad.yaml", "targets:\n  - {target: 127.0.0.1:1, zone: 'dm z'}\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory(bad)
    assert [p.as_line() for p in caught.value.problems] == [
        f"{bad}:2:33: 'zone' must be a name of letters, digits, '.', '_' or '-' (e.g. dmz)"
    ]
