"""The parse command beside its floor: ``recon-gateway parse FILE --format jsonl`` against a
bare lxml iterparse of the same camt.053 file, in one run.

    .venv/bin/python bench/parse_cli_bench.py [--sizes 100000,1000000] [--repeat 2]
                                              [--data DIR] [--keep]

For each size a seeded camt.053 is generated (``bench/generate.py``; with ``--data`` taken
from, or written to, that folder and kept, else written to a temporary folder and deleted
after the run unless ``--keep``), then measured, each run a fresh process:

- floor: ``lxml.etree.iterparse`` over the file (end events on ``Ntry``, each cleared with
  its preceding siblings deleted, counting entries): what reading the XML costs at least;
- ours: the installed ``recon-gateway parse FILE --format jsonl`` with its output to
  /dev/null (start-up, detection, conversion, checks, ids and the JSON text included).

The runs alternate (floor, ours, floor, ours, ...) so that a busy machine's noise falls on
both alike; the best of ``--repeat`` counts. Figures: seconds, entries/s, ours as a
fraction of the floor's speed (floor seconds / our seconds; the goal is at least 0.5), the
same by CPU seconds (user and system: steadier than wall time on a shared machine), and
each child's peak resident memory (``ru_maxrss`` of its children, taken by a small
wrapper process that runs it: a child forked from the benchmark itself would count the
benchmark's memory too). The command's output is checked once, in a run of its own at the smallest
size: one statement with every entry, adding up to the generated net amount. Start-up is
``recon-gateway parse`` of a small golden file (best of five).

The result is printed as a markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import run_info
from generate import DEFAULT_SEED, Expected, file_for

ROOT = Path(__file__).resolve().parent.parent
SMALL_FILE = ROOT / "tests" / "data" / "camt" / "camt053_v08.xml"
MIB = 2**20

FLOOR = """
import sys
from lxml import etree
count = 0
with open(sys.argv[1], "rb") as file:
    for _, node in etree.iterparse(file, events=("end",), tag="{*}Ntry",
                                   resolve_entities=False, no_network=True, huge_tree=False):
        count += 1
        node.clear()
        while node.getprevious() is not None:
            del node.getparent()[0]
print(count)
"""


def _command() -> list[str]:
    """The installed command beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("recon-gateway")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    cpu: float  # seconds of CPU (user and system)
    peak_rss: int  # bytes


# Runs a command with its output to /dev/null and reports its wall time and its peak RSS.
# A process of its own: a child forked from this (bigger) process would count this
# process's memory in its own peak.
WRAPPER = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.buffer.write(done.stderr)
print(done.returncode, seconds, usage.ru_utime + usage.ru_stime,
      usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024))
"""


def _measure(argv: list[str]) -> Run:
    """Run ``argv`` to its end; its wall time and its own peak RSS. A failure stops the
    benchmark with the child's standard error."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True,
                          text=True, cwd=ROOT, check=True)
    code, seconds, cpu, peak = done.stdout.split()
    if code != "0":
        raise SystemExit(f"{' '.join(argv)} failed ({code}): {done.stderr[-2000:]}")
    return Run(float(seconds), float(cpu), int(peak))


def _check_output(path: Path, expected: Expected) -> None:
    """One run of the command whose output is read back: one statement, every entry,
    the generated net amount."""
    done = subprocess.run([*_command(), "parse", str(path), "--format", "jsonl"],
                          capture_output=True, check=True, cwd=ROOT)
    lines = done.stdout.splitlines()
    if len(lines) != 1:
        raise SystemExit(f"{len(lines)} statements printed, expected 1")
    statement = json.loads(lines[0])
    entries = statement["entries"]
    net = sum((Decimal(e["amount"]) for e in entries), start=Decimal(0))
    if len(entries) != expected.entries or net != Decimal(expected.net_cents).scaleb(-2):
        raise SystemExit(f"{len(entries)} entries adding up to {net}, expected "
                         f"{expected.entries} adding up to {expected.net_cents / 100}")
    if len({e["id"] for e in entries}) != len(entries):
        raise SystemExit("entry ids repeat")


@dataclass(frozen=True, slots=True)
class Result:
    entries: int
    mib: float
    floor: Run
    ours: Run


def measure(path: Path, expected: Expected, repeat: int) -> Result:
    floors, ours = [], []
    for _ in range(repeat):
        floors.append(_measure([sys.executable, "-c", FLOOR, str(path)]))
        ours.append(_measure([*_command(), "parse", str(path), "--format", "jsonl"]))
    return Result(expected.entries, path.stat().st_size / MIB,
                  min(floors, key=lambda r: r.seconds), min(ours, key=lambda r: r.seconds))


def start_up() -> float:
    return min(_measure([*_command(), "parse", str(SMALL_FILE)]).seconds for _ in range(5))


def report(results: list[Result], started: float, argv: list[str], head: list[str]) -> str:
    lines = [
        "## Parse command: camt.053 through `recon-gateway parse` beside bare lxml iterparse",
        "",
        f"`.venv/bin/python bench/parse_cli_bench.py{''.join(' ' + a for a in argv)}`",
        "",
        *head,
        f"- start-up (`recon-gateway parse` of a one-statement golden file): {started:.2f} s",
        "",
        "| entries | file MiB | floor s | floor entries/s | ours s | ours entries/s "
        "| ours / floor | floor CPU s | ours CPU s | ours / floor by CPU "
        "| floor peak RSS MiB | ours peak RSS MiB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.entries:,} | {r.mib:.0f} | {r.floor.seconds:.2f} | "
            f"{r.entries / r.floor.seconds:,.0f} | {r.ours.seconds:.2f} | "
            f"{r.entries / r.ours.seconds:,.0f} | {r.floor.seconds / r.ours.seconds:.2f} | "
            f"{r.floor.cpu:.2f} | {r.ours.cpu:.2f} | {r.floor.cpu / r.ours.cpu:.2f} | "
            f"{r.floor.peak_rss / MIB:.0f} | {r.ours.peak_rss / MIB:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated entries")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each (best counts)")
    parser.add_argument("--data", type=Path, help="folder of generated files to reuse (kept)")
    parser.add_argument("--keep", action="store_true", help="keep generated files")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    head = run_info.machine(("lxml",))
    folder = args.data or Path(tempfile.mkdtemp(prefix="parse-cli-bench-"))
    try:
        files = [file_for("camt", n, DEFAULT_SEED, out=folder) for n in sizes]
        _check_output(*files[0])
        started = start_up()
        results = []
        for path, expected in files:
            results.append(measure(path, expected, args.repeat))
            print(f"{expected.entries} entries measured", file=sys.stderr)
    finally:
        if args.data is None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(report(results, started, sys.argv[1:] if argv is None else argv, head))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
