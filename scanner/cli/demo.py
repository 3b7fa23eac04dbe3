"""``tlsgate demo``: a deliberately out-of-policy endpoint on loopback, scanned like any other."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from scanner.cli.deliver import scan_and_deliver
from scanner.cli.errors import fatal
from scanner.cli.options import DEFAULT_PACKS, Output, load_packs
from scanner.engine import ScanRequest, TrustRequest
from scanner.exitcodes import ExitCode
from scanner.probe.options import ProbeOptions
from scanner.render import FILE_SUFFIXES, OutputFormat
from scanner.targets import parse_target

# A pack the demo endpoint fails on purpose, so that the reports show a failure with its evidence.
DEMO_FAILING_PACK = "tls13-only"


def demo(
    out: Annotated[Path, typer.Option("--out", help="Directory for the demo's reports.")] = Path("tlsgate-demo"),
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, max=300)] = 5.0,
) -> None:
    """Start a local TLS endpoint on 127.0.0.1 (certificates made on the fly), scan it, write reports.

    It is judged by the default pack (essentials), with the demo's own CA trusted as --ca-file would, which it
    passes, and by tls13-only, which it fails on purpose (it accepts TLS 1.2): the reports show a passing and a
    failing pack side by side, the failure with its evidence. Exits 0 when the reports were written.
    """
    from scanner.demo import demo_endpoint, make_demo_pki  # noqa: PLC0415 - only the demo needs it

    out.mkdir(parents=True, exist_ok=True)
    packs = load_packs((*DEFAULT_PACKS, DEMO_FAILING_PACK))
    with (
        tempfile.TemporaryDirectory(prefix="tlsgate-demo-") as tmp,
        demo_endpoint(pki := make_demo_pki(Path(tmp))) as server,
    ):
        typer.echo(f"demo endpoint listening on {server.target} (TLS 1.2 and 1.3)")
        outputs = [Output(fmt, out / f"report{FILE_SUFFIXES[fmt]}") for fmt in OutputFormat]
        # every probe (all_facts): the demo shows all a report can say
        request = ScanRequest(
            [parse_target(server.target)],
            packs,
            ProbeOptions(timeout=timeout),
            all_facts=True,
            trust=TrustRequest(ca_files=[pki.ca_cert]),
        )
        report = scan_and_deliver(request, outputs, progress=False)
    if report.targets[0].verdict == "error":
        fatal("the demo endpoint could not be scanned", ExitCode.NOT_CHECKED)
    typer.echo("demo done: open the HTML report in a browser")
