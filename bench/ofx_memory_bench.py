"""Peak memory of ``recon-gateway parse`` on large OFX files, SGML and XML, in one run.

    .venv/bin/python bench/ofx_memory_bench.py [--sizes 100000,1000000] [--formats ofx,ofx2]
                                               [--data DIR] [--repeat 1] [--stream]

For each format and size a seeded statement is generated (``ofx``: OFX 1.02 SGML from
``bench/generate.py``; ``ofx2``: the same statement as OFX 2.1.1 XML, written by
``bench/parsers_bench.py``), cached in ``--data`` (default ``bench/out/``), then the parse
command of this tree (``python -m gateway.cli parse FILE --format jsonl``, this tree first on
``PYTHONPATH``, so a copy of the script in another checkout measures that checkout's code) is
run with its output to /dev/null, each run a fresh process. Figures: the file's size, wall
and CPU seconds, and the command's peak resident memory (``ru_maxrss`` of a small wrapper's
children, as ``bench/parse_cli_bench.py`` takes it). The output is checked once, at the
smallest size of each format: one statement, every entry, the generated net amount.

With ``--stream`` the parser alone is measured instead: ``parsers.ofx.stream`` over the open
file, each part let go and the entries counted (the command also keeps what it needs of
each entry, such as its id's first 64 bits to tell identical lines apart).

The result is printed as a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import run_info
from generate import DEFAULT_SEED, OUT, Expected
from parse_cli_bench import WRAPPER
from parsers_bench import file_for

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20
NAMES = {"ofx": "SGML (OFX 1.02)", "ofx2": "XML (OFX 2.1.1)"}


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    cpu: float
    peak_rss: int  # bytes


# The parser alone: the stream over the open file, each part let go.
STREAM = """
import sys
from parsers import ofx
from parsers.model import Entry
with open(sys.argv[1], "rb") as file:
    count = sum(1 for part in ofx.stream(file, source=sys.argv[1]) if isinstance(part, Entry))
if count != int(sys.argv[2]):
    sys.exit(f"{count} entries, expected {sys.argv[2]}")
"""


def _command(path: Path, entries: int = 0, *, stream: bool = False) -> list[str]:
    if stream:
        return [sys.executable, "-c", STREAM, str(path), str(entries)]
    return [sys.executable, "-m", "gateway.cli", "parse", str(path), "--format", "jsonl"]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def _measure(path: Path, entries: int, *, stream: bool) -> Run:
    done = subprocess.run([sys.executable, "-c", WRAPPER, *_command(path, entries,
                                                                    stream=stream)],
                          capture_output=True, text=True, cwd=ROOT, check=True,
                          env=_environment())
    code, seconds, cpu, peak = done.stdout.split()
    if code != "0":
        raise SystemExit(f"parse {path} failed ({code}): {done.stderr[-2000:]}")
    return Run(float(seconds), float(cpu), int(peak))


def _check_output(path: Path, expected: Expected) -> None:
    done = subprocess.run(_command(path), capture_output=True, check=True, cwd=ROOT,
                          env=_environment())
    lines = done.stdout.splitlines()
    if len(lines) != 1:
        raise SystemExit(f"{path}: {len(lines)} statements printed, expected 1")
    entries = json.loads(lines[0])["entries"]
    net = sum((Decimal(e["amount"]) for e in entries), start=Decimal(0))
    if len(entries) != expected.entries or net != Decimal(expected.net_cents).scaleb(-2):
        raise SystemExit(f"{path}: {len(entries)} entries adding up to {net}, expected "
                         f"{expected.entries} adding up to {expected.net_cents / 100}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated entries")
    parser.add_argument("--formats", default="ofx,ofx2", help="comma-separated: ofx, ofx2")
    parser.add_argument("--data", type=Path, default=OUT, help="folder of generated files")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (best counts)")
    parser.add_argument("--stream", action="store_true",
                        help="measure parsers.ofx.stream alone instead of the command")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    formats = [f for f in args.formats.split(",") if f]
    head = run_info.machine(("ofxparse",))
    args.data.mkdir(parents=True, exist_ok=True)
    rows = []
    for fmt in formats:
        files = [file_for(fmt, n, DEFAULT_SEED, out=args.data) for n in sizes]
        if not args.stream:
            _check_output(*files[0])
        for path, expected in files:
            runs = [_measure(path, expected.entries, stream=args.stream)
                    for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r.seconds)
            peak = min(r.peak_rss for r in runs)
            rows.append(f"| {NAMES.get(fmt, fmt)} | {expected.entries:,} | "
                        f"{path.stat().st_size / MIB:,.0f} | {best.seconds:.1f} | "
                        f"{best.cpu:.1f} | {expected.entries / best.seconds:,.0f} | "
                        f"{peak / MIB:,.0f} |")
            print(rows[-1], file=sys.stderr, flush=True)
    print(f"`.venv/bin/python bench/ofx_memory_bench.py"
          f"{''.join(' ' + a for a in (argv if argv is not None else sys.argv[1:]))}`\n")
    print("\n".join(head) + "\n")
    print("| format | entries | file MiB | seconds | CPU s | entries/s | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
