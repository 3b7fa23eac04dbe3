"""The published JSON Schema of an inventory (``reports/schema/inventory.schema.json``)."""

from __future__ import annotations

from typing import Any

from scanner.probe.connect.starttls import StartTls

INVENTORY_SCHEMA_ID = "https://tlsgate.dev/schema/inventory-1.json"


def _settings_properties() -> dict[str, Any]:
    path = {"type": "string", "minLength": 1}
    return {
        "packs": {
            "description": "Built-in pack ids or pack files (relative to the inventory); replaces, never adds to, "
            "the packs of the group, the defaults and --pack.",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
        },
        "params": {
            "description": "Pack parameters: NAME (every pack of the target declaring it) or PACK.NAME to a value.",
            "type": "object",
            "propertyNames": {"pattern": "^([a-z0-9][a-z0-9._-]*\\.)?[a-z][a-z0-9_]*$"},
        },
        "timeout": {"type": "number", "minimum": 0.1, "maximum": 300, "description": "Seconds per connect and read."},
        "sni": {"type": "string", "minLength": 1, "description": "Send this SNI instead of the host name."},
        "no_sni": {"type": "boolean", "description": "Send no SNI at all."},
        "connect": {"type": "string", "description": "Connect to this IP address; the host name stays the SNI."},
        "starttls": {"enum": [p.value for p in StartTls], "description": "Upgrade this plaintext protocol first."},
        "name_check": {
            "type": "boolean",
            "description": "false: judge trust by the chain alone, not for the host name (peers identified by DN).",
        },
        "client": {
            "description": "Client certificate for mTLS: file paths and the NAME of the password's variable, "
            "never a password.",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "cert": path,
                "key": path,
                "p12": path,
                "password_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                "password_file": path,
            },
        },
        "zone": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$",
            "description": "Network zone: with --executor dask, only workers declaring the resource zone-NAME probe "
            "the target; none in the cluster: error class no_worker.",
        },
        "every": {
            "type": "string",
            "pattern": "^\\s*\\d+(\\.\\d+)?\\s*[smhdwy]\\s*$",
            "description": "How often `tlsgate watch` scans the target: 30m, 6h, 1d (jittered by up to a tenth).",
        },
        "tags": {
            "description": "Names for --tag; they add up over defaults, the group (its name is a tag too), the target.",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string", "minLength": 1}}],
        },
    }


def inventory_schema() -> dict[str, Any]:
    settings = _settings_properties()
    target = {
        "description": "A target: 'target' (host:port or URL) or 'host' and 'port', and its own settings.",
        "oneOf": [
            {"type": "string", "description": "host, host:port, [ipv6]:port or a URL"},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "description": "Unique; the target's name in reports."},
                    "target": {"type": "string", "minLength": 1},
                    "host": {"type": "string", "minLength": 1},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    **settings,
                },
                "oneOf": [{"required": ["target"]}, {"required": ["host"]}],
            },
        ],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": INVENTORY_SCHEMA_ID,
        "title": "tlsgate inventory",
        "description": "Targets for `tlsgate scan --inventory FILE`; `tlsgate` itself checks more (pack ids and "
        "parameters, files) and reports file:line:column.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "defaults": {"$ref": "#/$defs/settings"},
            "groups": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["targets"],
                    "properties": {**settings, "targets": {"$ref": "#/$defs/targets"}},
                },
            },
            "targets": {"$ref": "#/$defs/targets"},
        },
        "$defs": {
            "settings": {"type": "object", "additionalProperties": False, "properties": settings},
            "targets": {"type": "array", "items": {"$ref": "#/$defs/target"}},
            "target": target,
        },
    }
