"""Fuzzing the YAML loaders: seeded random mutations of every built-in pack and of the sample inventory and waivers
file in docs/ (byte flips, cuts, repeats, control characters, invalid UTF-8, anchors and aliases, an alias bomb,
deep nesting) must each load or raise the loader's own file error — never another exception (exit 5 at the
command line), never a long run, never much memory.

The cases run in a child process, so its peak memory (``ru_maxrss``) is the loaders' and nothing else's. A few
thousand cases run in the test suite; ``TLSGATE_FUZZ_CASES=100000`` (and ``TLSGATE_FUZZ_SEED``) runs more.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scanner.gate import GateFileError, load_waivers
from scanner.policy.pack import PackError, builtin_pack_files, load_pack
from scanner.probe.options import ConnectOptions
from scanner.targets.inventory import InventoryError
from scanner.targets.planning import plan
from scanner.targets.reader import load_inventory
from scanner.yamlfile import FileProblems

ROOT = Path(__file__).resolve().parent.parent
CASES = int(os.environ.get("TLSGATE_FUZZ_CASES", "2500"))
SEED = int(os.environ.get("TLSGATE_FUZZ_SEED", "20261205"))
MAX_RSS_MB = 300  # the child's whole peak: Python, pydantic and the loaders (~80 MB); a bomb took 2 GB
MAX_CASE_SECONDS = 3.0  # generous on a loaded 2-core machine; a case takes milliseconds

# An inventory that loads and plans (packs with parameters, groups, STARTTLS), so mutations reach the planner.
PLANNED_INVENTORY = b"""\
defaults:
  packs: [essentials]
  timeout: 3
  tags: [all]
groups:
  web:
    packs: [mozilla-intermediate, essentials]
    params: {essentials.expiry_warning: 14d}
    targets:
      - name: a
        target: https://a.example
      - host: b.example
        port: 8443
        sni: b.example
targets:
  - name: mail
    host: mail.example
    port: 25
    starttls: smtp
    packs: [tls12-plus]
  - 127.0.0.1:8443
"""


def load_and_plan(path: Path) -> object:
    """What ``scan --inventory`` does with the file before scanning: read it, then load each target's packs."""
    inventory = load_inventory(path)
    return plan(inventory, inventory.targets, ["tls13-only"], [], ConnectOptions(), path.parent)


Loader = Callable[[Path], object]
LOADERS: dict[str, tuple[Loader, type[FileProblems]]] = {
    "pack": (load_pack, PackError),
    "inventory": (load_and_plan, InventoryError),
    "waivers": (load_waivers, GateFileError),
}


def _doc_block(doc: str, first_key: str) -> bytes:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return next(b for b in blocks if re.search(rf"^{first_key}:", b, re.M)).encode()


def seeds() -> list[tuple[str, str, bytes]]:
    """(kind, name, content): every built-in pack, the docs' inventory and waivers file, an inventory that plans."""
    found = [("pack", f.name, f.read_bytes()) for f in builtin_pack_files()]
    found.append(("inventory", "inventory.md", _doc_block("inventory.md", "targets")))
    found.append(("inventory", "planned", PLANNED_INVENTORY))
    found.append(("waivers", "pipelines.md", _doc_block("pipelines.md", "waivers")))
    return found


_CONTROLS = [*(chr(c) for c in range(0x20) if c not in (0x09, 0x0A)), "\x7f", "\x85", "\x9b", "\u202e", "\ufffe"]
_ESCAPES = ['"\\e[2J\\e]0;owned\\a"', '"\\0"', '"\\x9b31m"', '"a\\u202eb"', '"\\N\\L\\P"']


def _bomb(levels: int) -> bytes:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return ("\n".join(lines) + "\n").encode()


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """``data`` after one to three random mutations, and their names (to reproduce a failure by reading)."""
    done = []
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(data) + 1)
        kind = rng.choice(
            ["flip", "cut", "repeat", "control", "bad-utf8", "alias", "anchor", "bomb", "nest", "escape", "truncate"]
        )
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
        elif kind == "cut":
            data = data[:at] + data[at + rng.randint(1, 200) :]
        elif kind == "repeat":
            piece = data[at : at + rng.randint(1, 400)]
            data = data[:at] + piece * rng.randint(2, 50) + data[at:]
        elif kind == "control":
            data = data[:at] + rng.choice(_CONTROLS).encode() + data[at:]
        elif kind == "bad-utf8":
            data = data[:at] + bytes([rng.choice([0x80, 0xC0, 0xE9, 0xED, 0xF5, 0xFF])]) + data[at:]
        elif kind == "alias":
            data = data[:at] + rng.choice([b" *a", b"*a ", b" [*a, *a]", b"<<: *a\n", b"*undefined"]) + data[at:]
        elif kind == "anchor":
            data = data[:at] + rng.choice([b" &a", b"&a [*a]", b"&a {k: *a}", b" &a &b"]) + data[at:]
        elif kind == "bomb":
            data = _bomb(rng.randint(3, 12)) + data
        elif kind == "nest":
            depth = rng.choice([10, 63, 64, 65, 200, 5000, 50_000])
            opener, closer = rng.choice([(b"[", b"]"), (b"{a: ", b"}"), (b"- ", b"")])
            data = data[:at] + opener * depth + closer * rng.choice([0, depth]) + data[at:]
        elif kind == "escape":
            data = data[:at] + rng.choice(_ESCAPES).encode() + data[at:]
        elif kind == "truncate":
            data = data[:at]
        done.append(kind)
    return data, done


def run(cases: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Each case loaded by its kind's loader; returns the failures (exceptions other than the file error, slow
    cases), the slowest case and this process's peak memory."""
    rng = random.Random(seed)  # noqa: S311 - reproducible mutations, nothing secret
    sources = seeds()
    failures: list[str] = []
    slowest = 0.0
    refused = 0
    for case in range(cases):
        kind, name, original = rng.choice(sources)
        data, mutations = mutate(original, rng)
        path = workdir / f"case{case % 8}.yaml"
        path.write_bytes(data)
        load, error = LOADERS[kind]
        started = time.perf_counter()
        try:
            load(path)
        except error as exc:
            refused += 1
            # the file has a problem (a pack it names may have more, listed after it), each with a place
            bad = [p for p in exc.problems if not p.file or p.line < 0 or p.column < 0 or not p.message]
            if bad or all(p.file != str(path) for p in exc.problems):
                failures.append(f"case {case} ({name}: {mutations}): malformed problems {exc.problems!r}")
        except Exception as exc:  # what the fuzzing looks for: any other exception is a failure
            failures.append(f"case {case} ({name}: {mutations}): {type(exc).__name__}: {exc}"[:500])
        elapsed = time.perf_counter() - started
        slowest = max(slowest, elapsed)
        if elapsed > MAX_CASE_SECONDS:
            failures.append(f"case {case} ({name}: {mutations}): took {elapsed:.1f} s")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"failures": failures, "slowest": slowest, "refused": refused, "peak_mb": peak_kb / 1024}


def test_fuzzed_packs_inventories_and_waivers_load_or_fail_cleanly(tmp_path):
    """Thousands of mutated files each load or raise their file error, each within seconds, in bounded memory."""
    code = (
        "import json, sys; from pathlib import Path; from tests.test_fuzz_yaml import run; "
        f"print(json.dumps(run({CASES}, {SEED}, Path(sys.argv[1]))))"
    )
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60 + CASES * 0.2,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.splitlines()[-1])
    assert result["failures"] == []
    assert result["refused"] > CASES // 2  # the mutations do reach the checks, not only the happy path
    assert result["peak_mb"] < MAX_RSS_MB, result
    print(f"{CASES} cases in {time.monotonic() - started:.1f} s: {result}")
