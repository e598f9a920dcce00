"""Parser benchmark: entries/s and memory of our parsers beside the raw floor, in one run.

    .venv/bin/python bench/parsers_bench.py [--formats camt,mt940,ofx] [--sizes N,...]
                                             [--repeat 3] [--timeout 120] [--profile KEY]

For each format and size a seeded statement is generated (``bench/generate.py``, cached in
``bench/out/``) and measured by our parser and, in the same run, by the raw floor it is
compared with:

- camt: ``parsers.camt.parse`` and the full pipeline ``parsers.parse`` (detection + balance
  check) against a bare ``lxml.etree.iterparse`` over the same bytes (end events on ``Ntry``,
  each cleared with its preceding siblings deleted, counting entries).
- mt940: ``parsers.mt940.parse`` against the ``mt-940`` package's own
  ``Transactions().parse`` (the library our parser wraps) and a bare regex count of ``:61:``.
- ofx (OFX 1.02 SGML) and ofx2 (the same statement as OFX 2.1.1 XML, every element
  closed, written here from the SGML file): ``parsers.ofx.parse`` against
  ``ofxparse.OfxParser.parse``.
- mt940, ofx and ofx2 also through the streaming reader (``parsers.mt940.stream``,
  ``parsers.ofx.stream``) the way a consumer in flat memory uses it: each part taken and
  let go, the entries counted and summed, nothing kept but the statements' ends. Its
  working memory is what the reader holds, and must not grow with the entries.

Every run is a fresh subprocess, so its peak RSS is its own. The timed runs of one file
alternate between the measurements (floor, ours, floor, ours, ...), so the noise of a busy
machine falls on all of them alike; the best of ``--repeat`` counts (a run of over 30 s is
not repeated). Figures:

- entries/s: entries / best seconds of the parse call (input already in memory);
- peak RSS: the run's peak resident set (Linux ``VmHWM``, reset just before the parse;
  ``ru_maxrss`` elsewhere), so it includes the interpreter, the imports and the input
  bytes; RSS growth: that peak minus the RSS just before the parse;
- working memory, from one more run under ``tracemalloc``: the traced peak during the parse
  minus what the result still holds once the parse has returned (after ``gc.collect()``).
  The input is read before tracing starts, so this is what the parser needed beyond its
  input and its output. ``tracemalloc`` sees Python allocations only: libxml2's buffers
  show in the RSS figures, not in working memory.

Every result is checked before its time counts: the number of entries equals N, the entries
add up to the generated net amount, the balances match and (for our parsers) the balance
check passes. A parser that drops or merges lines fails the run instead of looking fast.
A size that the smaller sizes predict to need more than ``--timeout`` per run is skipped
and says so; so is a traced run expected to take over twice ``--timeout``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import math
import pstats
import re
import resource
import shlex
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import run_info
from generate import DEFAULT_SEED, OUT, Expected
from generate import FORMATS as GENERATED
from generate import file_for as generated_file

FORMATS = (*GENERATED, "ofx2")

ROOT = Path(__file__).resolve().parent.parent
# The parsers measured are those of the tree this script is in (an installed copy elsewhere
# would be found first otherwise, when the script is run from another checkout).
sys.path.insert(0, str(ROOT))
SOURCE = "bench"
CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
DEFAULT_SIZES = {
    "camt": (25_000, 50_000, 100_000, 200_000),
    "mt940": (20_000, 100_000),
    "ofx": (2_500, 10_000, 100_000),
    "ofx2": (2_500, 10_000, 100_000),
}
HEADLINE_SIZE = 100_000  # the pipeline (parsers.parse) is measured at the CAMT size nearest this
MIB = 2**20
TRACE_SLOWDOWN = 5  # tracemalloc makes our parsers about 4.5 to 5.5 times slower
LONG_RUN = 30.0  # seconds: after a timed run this long, no more repeats (noise averages out)

Parse = Callable[[bytes], Any]


# --- what is measured ----------------------------------------------------------------------

def _decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _check_counts(count: int, net: Decimal, expected: Expected) -> list[str]:
    problems = []
    if count != expected.entries:
        problems.append(f"{count} entries, expected {expected.entries}")
    if net != _decimal(expected.net_cents):
        problems.append(f"entries add up to {net}, expected {_decimal(expected.net_cents)}")
    return problems


def _check_statements(statements: Any, expected: Expected) -> list[str]:
    """Problems with a tuple of our ``Statement`` objects (empty list when all is right)."""
    from parsers.checks import balance_flags

    if len(statements) != 1:
        return [f"{len(statements)} statements, expected 1"]
    (statement,) = statements
    net = sum((e.amount.amount for e in statement.entries), start=Decimal(0))
    problems = _check_counts(len(statement.entries), net, expected)
    opening, closing = statement.opening_balance, statement.closing_balance
    if opening is not None and opening.amount.amount != _decimal(expected.opening_cents):
        problems.append(f"opening balance {opening.amount.amount}")
    if closing is None or closing.amount.amount != _decimal(expected.closing_cents):
        problems.append(f"closing balance {closing and closing.amount.amount}")
    if expected.format != "ofx" and opening is None:
        problems.append("no opening balance")
    flags = [f.code for f in balance_flags(statement)]
    flags += [f.code for f in statement.flags if f.code in _CHECK_FLAGS]
    if flags:
        problems.append(f"balance check failed: {', '.join(sorted(set(flags)))}")
    return problems


_CHECK_FLAGS = ("balance_mismatch", "balance_currency_mismatch", "entry_currency_mismatch")


def _load_ours(fmt: str) -> Parse:
    module = __import__(f"parsers.{fmt}", fromlist=["parse"])
    parse: Callable[..., Any] = module.parse
    return lambda data: parse(data, source=SOURCE)


def _load_pipeline() -> Parse:
    import parsers

    return lambda data: parsers.parse(data, source=SOURCE)


def _load_lxml() -> Parse:
    from lxml import etree

    tag = f"{{{CAMT_NS}}}Ntry"

    def iterparse_count(data: bytes) -> int:
        count = 0
        events = etree.iterparse(
            io.BytesIO(data), events=("end",), tag=tag,
            resolve_entities=False, no_network=True, huge_tree=False,
        )
        for _, elem in events:
            count += 1
            elem.clear()
            while elem.getprevious() is not None:
                del elem.getparent()[0]
        return count

    return iterparse_count


def _check_count(result: Any, expected: Expected) -> list[str]:
    return [] if result == expected.entries else [f"{result} entries, expected {expected.entries}"]


def _load_mt940_lib() -> Parse:
    import mt940

    def mt940_parse(data: bytes) -> Any:
        transactions = mt940.models.Transactions()
        transactions.parse(data.decode("utf-8"))
        return transactions

    return mt940_parse


def _check_mt940_lib(result: Any, expected: Expected) -> list[str]:
    net = sum((t.data["amount"].amount for t in result), start=Decimal(0))
    problems = _check_counts(len(result), net, expected)
    opening = result.data.get("final_opening_balance")
    closing = result.data.get("final_closing_balance")
    if opening is None or opening.amount.amount != _decimal(expected.opening_cents):
        problems.append(f"opening balance {opening}")
    if closing is None or closing.amount.amount != _decimal(expected.closing_cents):
        problems.append(f"closing balance {closing}")
    return problems


def _load_regex() -> Parse:
    pattern = re.compile(rb"^:61:", re.MULTILINE)
    return lambda data: len(pattern.findall(data))


@dataclass(frozen=True)
class Streamed:
    """What a flat-memory consumer of a stream keeps: counts, the net, the ends."""

    entries: int
    net: Decimal
    ends: tuple[Any, ...]  # the StatementEnd parts
    failed: tuple[str, ...]


def _load_stream(fmt: str) -> Parse:
    module = __import__(f"parsers.{fmt}", fromlist=["stream"])
    from parsers.model import Entry
    from parsers.stream import StatementEnd, StatementFailed

    def consume(data: bytes) -> Streamed:
        entries, net, ends, failed = 0, Decimal(0), [], []
        for part in module.stream(io.BytesIO(data), source=SOURCE):
            if isinstance(part, Entry):
                entries += 1
                net += part.amount.amount
            elif isinstance(part, StatementEnd):
                ends.append(part)
            elif isinstance(part, StatementFailed):
                failed.append(str(part.error))
        return Streamed(entries, net, tuple(ends), tuple(failed))

    return consume


def _check_stream(result: Any, expected: Expected) -> list[str]:
    problems = _check_counts(result.entries, result.net, expected)
    if result.failed:
        problems.append(f"failed: {result.failed[0]}")
    if len(result.ends) != 1:
        return [*problems, f"{len(result.ends)} statements, expected 1"]
    (end,) = result.ends
    statement = end.statement
    if end.entries != expected.entries:
        problems.append(f"the end counts {end.entries} entries")
    opening, closing = statement.opening_balance, statement.closing_balance
    if opening is not None and opening.amount.amount != _decimal(expected.opening_cents):
        problems.append(f"opening balance {opening.amount.amount}")
    if closing is None or closing.amount.amount != _decimal(expected.closing_cents):
        problems.append(f"closing balance {closing and closing.amount.amount}")
    return problems


_XML_LEAF = re.compile(rb"^<([A-Z0-9.]+)>([^<\r\n]+)$", re.MULTILINE)
_OFX2_HEADER = (b'<?xml version="1.0" encoding="US-ASCII" standalone="no"?>\r\n'
                b'<?OFX OFXHEADER="200" VERSION="211" SECURITY="NONE" OLDFILEUID="NONE" '
                b'NEWFILEUID="NONE"?>\r\n')


def file_for(fmt: str, n: int, seed: int = DEFAULT_SEED, *, out: Path = OUT,
             dialect: str = "swift") -> tuple[Path, Expected]:
    """``generate.file_for``, and for ofx2 the generated OFX 1.02 file written as OFX 2.1.1
    XML: the XML and OFX declarations for the SGML header, every leaf closed."""
    if fmt != "ofx2":
        return generated_file(fmt, n, seed, out=out, dialect=dialect)
    sgml, expected = generated_file("ofx", n, seed, out=out)
    path = sgml.with_name("ofx2" + sgml.name.removeprefix("ofx"))
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        data = sgml.read_bytes()
        body = data[data.index(b"<OFX>"):]
        body = _XML_LEAF.sub(lambda m: b"<%s>%s</%s>" % (m[1], m[2].rstrip(b"\r"), m[1]),
                             body.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
        path.write_bytes(_OFX2_HEADER + body)
        meta.write_bytes(sgml.with_suffix(".json").read_bytes())
    return path, expected


def _load_ofxparse() -> Parse:
    import ofxparse

    return lambda data: ofxparse.OfxParser.parse(io.BytesIO(data))


def _check_ofxparse(result: Any, expected: Expected) -> list[str]:
    statement = result.account.statement
    net = sum((t.amount for t in statement.transactions), start=Decimal(0))
    problems = _check_counts(len(statement.transactions), net, expected)
    if statement.balance != _decimal(expected.closing_cents):
        problems.append(f"closing balance {statement.balance}")
    return problems


@dataclass(frozen=True)
class Measure:
    key: str
    fmt: str
    label: str
    role: str  # "ours" or "floor"
    load: Callable[[], Parse]
    check: Callable[[Any, Expected], list[str]]
    traced: bool = True  # measure working memory too


MEASURES = {
    m.key: m
    for m in (
        Measure("camt.lxml", "camt", "lxml iterparse (bare)", "floor", _load_lxml, _check_count),
        Measure("camt.ours", "camt", "parsers.camt.parse", "ours",
                lambda: _load_ours("camt"), _check_statements),
        Measure("camt.pipeline", "camt", "parsers.parse (detect + check)", "ours",
                _load_pipeline, _check_statements, traced=False),
        Measure("mt940.mt940", "mt940", "mt-940 Transactions.parse", "floor",
                _load_mt940_lib, _check_mt940_lib),
        Measure("mt940.regex", "mt940", "regex count of :61:", "floor", _load_regex,
                _check_count),
        Measure("mt940.ours", "mt940", "parsers.mt940.parse", "ours",
                lambda: _load_ours("mt940"), _check_statements),
        Measure("ofx.ofxparse", "ofx", "ofxparse.OfxParser.parse", "floor",
                _load_ofxparse, _check_ofxparse),
        Measure("mt940.stream", "mt940", "parsers.mt940.stream", "ours",
                lambda: _load_stream("mt940"), _check_stream),
        Measure("ofx.ours", "ofx", "parsers.ofx.parse", "ours",
                lambda: _load_ours("ofx"), _check_statements),
        Measure("ofx.stream", "ofx", "parsers.ofx.stream", "ours",
                lambda: _load_stream("ofx"), _check_stream),
        Measure("ofx2.ofxparse", "ofx2", "ofxparse.OfxParser.parse", "floor",
                _load_ofxparse, _check_ofxparse),
        Measure("ofx2.ours", "ofx2", "parsers.ofx.parse", "ours",
                lambda: _load_ours("ofx"), _check_statements),
        Measure("ofx2.stream", "ofx2", "parsers.ofx.stream", "ours",
                lambda: _load_stream("ofx"), _check_stream),
    )
}
FLOOR = {"camt": "camt.lxml", "mt940": "mt940.mt940", "ofx": "ofx.ofxparse",
         "ofx2": "ofx2.ofxparse"}


# --- the worker: one measurement in its own process ----------------------------------------

def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` figure in bytes (Linux), None elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _current_rss() -> int | None:
    return _status_kib("VmRSS")


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux 4.0+), so the next
    peak read is the parse's own; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _peak_rss() -> int:
    """Peak RSS of this process. VmHWM where Linux has it: ``ru_maxrss`` of a process
    started by a big parent reports the parent's peak (it is carried across exec)."""
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def _emit(report: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(report), flush=True)
    return report


def _parse_once(parse: Parse, data: bytes) -> tuple[Any, float, dict[str, Any]]:
    """(result, seconds, {}) or (None, 0, a report of why the parse failed)."""
    try:
        t0 = time.perf_counter()
        result = parse(data)
        return result, time.perf_counter() - t0, {}
    except NotImplementedError:
        return None, 0.0, {"status": "not ready", "error": "raises NotImplementedError"}
    except Exception as exc:
        return None, 0.0, {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}


def worker(key: str, mode: str, path: Path, expected: Expected) -> dict[str, Any]:
    """One run of one measurement, in a process of its own; printed as a JSON line.

    ``time``: seconds, peak RSS and RSS growth of the parse, and the result checked.
    ``memory``: the same parse under ``tracemalloc`` for its working memory.
    """
    measure = MEASURES[key]
    data = path.read_bytes()
    parse = measure.load()
    gc.collect()
    if mode == "memory":
        tracemalloc.start()
        result, _, failure = _parse_once(parse, data)
        gc.collect()  # reference cycles the parser left behind (a BeautifulSoup tree) go
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if failure:
            return _emit(failure)
        return _emit({"status": "ok", "traced_peak": peak, "retained": current,
                      "working": peak - current})
    reset = _reset_peak_rss()
    rss_before, peak_before = _current_rss(), _peak_rss()
    result, seconds, failure = _parse_once(parse, data)
    peak_after = _peak_rss()
    if failure:
        return _emit(failure)
    report: dict[str, Any] = {"status": "ok", "seconds": seconds, "peak_rss": peak_after}
    if rss_before is not None and (reset or peak_after > peak_before):
        report["rss_growth"] = peak_after - rss_before
    problems = measure.check(result, expected)
    if problems:
        return _emit({"status": "wrong", "error": "; ".join(problems)})
    return _emit(report)


# --- the driver ----------------------------------------------------------------------------

@dataclass
class Row:
    fmt: str
    entries: int
    file_bytes: int
    measure: Measure
    report: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.report.get("status") == "ok"

    @property
    def best(self) -> float | None:
        times = self.report.get("times") or []
        return min(times) if self.ok and times else None

    @property
    def rate(self) -> float | None:
        best = self.best
        return self.entries / best if best else None


def run_worker(
    key: str, mode: str, path: Path, args: argparse.Namespace, timeout: float | None = None
) -> dict[str, Any]:
    timeout = timeout or args.timeout
    command = [
        sys.executable, str(Path(__file__).resolve()), "--worker", key, "--mode", mode,
        "--file", str(path), "--expected", str(path.with_suffix(".json")),
    ]
    try:
        done = subprocess.run(  # our own script, fixed arguments
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "timeout": timeout}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "error", "error": f"worker exited {done.returncode}: {tail}"}
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def _predicted_seconds(history: list[tuple[int, float]], size: int) -> float | None:
    """Time for ``size`` entries extrapolated from runs on fewer (at least linear)."""
    if not history:
        return None
    (n1, t1) = history[-1]
    exponent = 1.0
    if len(history) >= 2:
        (n0, t0) = history[-2]
        if n1 > n0 and t1 > t0 > 0:
            exponent = max(1.0, math.log(t1 / t0) / math.log(n1 / n0))
    predicted: float = t1 * (size / n1) ** exponent
    return predicted


def measure_size(fmt: str, size: int, keys: list[str], args: argparse.Namespace,
                 history: dict[str, list[tuple[int, float]]]) -> list[Row]:
    """All measurements of one generated file: timed runs interleaved across ``keys`` (so
    the machine's noise falls on all of them alike), then one traced run each."""
    path, _ = file_for(fmt, size, args.seed, out=args.out, dialect=args.mt940_dialect)
    reports: dict[str, dict[str, Any]] = {key: {"status": "ok", "times": []} for key in keys}
    for key in keys:
        predicted = _predicted_seconds(history.get(key, []), size)
        if predicted is not None and predicted > args.timeout:
            n, t = history[key][-1]
            reports[key] = {"status": "skipped", "predicted": predicted, "error": (
                f"predicted {predicted:,.0f} s per run, over the {args.timeout:g} s timeout "
                f"(from {t:.1f} s at {n:,} entries)")}
    for _ in range(args.repeat):
        for key in keys:
            report = reports[key]
            if report["status"] != "ok" or any(t > LONG_RUN for t in report["times"]):
                continue
            run = run_worker(key, "time", path, args)
            if run["status"] != "ok":
                report.update(run)
                continue
            report["times"].append(run["seconds"])
            for field in ("peak_rss", "rss_growth"):  # the smallest is the least disturbed
                if field in run:
                    report[field] = min(report.get(field, run[field]), run[field])
            _progress(fmt, size, key, f"{run['seconds']:.3f} s")
    for key in keys:
        report = reports[key]
        traced = report["status"] == "ok" and MEASURES[key].traced and args.memory
        expected_trace = TRACE_SLOWDOWN * min(report.get("times") or [0])
        if traced and expected_trace > 2 * args.timeout:
            report["memory"] = f"skipped, would take about {expected_trace:,.0f} s"
        elif traced:
            run = run_worker(key, "memory", path, args,
                             timeout=max(args.timeout, 1.5 * expected_trace))
            if run["status"] == "ok":
                report.update({k: v for k, v in run.items() if k != "status"})
            else:
                report["memory"] = run.get("error") or run["status"]
        if report["status"] == "ok":
            history.setdefault(key, []).append((size, min(report["times"])))
        _progress(fmt, size, key, report["status"])
    return [Row(fmt, size, path.stat().st_size, MEASURES[key], reports[key]) for key in keys]


def _progress(fmt: str, size: int, key: str, text: str) -> None:
    print(f"  {fmt} {size:>9,} {MEASURES[key].label:<32} {text}", file=sys.stderr, flush=True)


def _mib(value: float | None) -> str:
    return "" if value is None else f"{value / MIB:,.1f}"


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _status(row: Row) -> str:
    report = row.report
    if row.ok:
        memory = report.get("memory")
        return f"ok; traced run: {memory}" if memory else "ok"
    if report["status"] == "timeout":
        return (f"timeout: no run finished within {report['timeout']:g} s "
                f"(< {row.entries / report['timeout']:,.0f} entries/s)")
    return f"{report['status']}: {report.get('error', '')}"


def _short_status(row: Row) -> str:
    """``_status`` cut to fit a table cell."""
    report = row.report
    if report.get("status") == "skipped":
        return f"skipped ({report.get('predicted', 0):,.0f} s/run predicted)"
    return _status(row) if row.ok else f"{report.get('status')} (see below)"


def summary_table(rows: list[Row]) -> list[str]:
    out = [
        "| format | entries | file MiB | parser | entries/s | floor entries/s | ours/floor "
        "| peak RSS MiB | working MiB |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    floors = {(r.fmt, r.entries): r for r in rows if r.measure.key == FLOOR[r.fmt]}
    for row in rows:
        if row.measure.role != "ours":
            continue
        floor = floors.get((row.fmt, row.entries))
        floor_rate = floor.rate if floor else None
        floor_text = _rate(floor_rate) if floor and floor.ok else (
            _short_status(floor) if floor else "not measured")
        ratio = (f"{row.rate / floor_rate:.2f}" if row.rate and floor_rate else "")
        rate = _rate(row.rate) if row.ok else _short_status(row)
        out.append(
            f"| {row.fmt} | {row.entries:,} | {row.file_bytes / MIB:,.1f} | "
            f"`{row.measure.label}` | {rate} | {floor_text} | {ratio} | "
            f"{_mib(row.report.get('peak_rss'))} | {_mib(row.report.get('working'))} |"
        )
    return out


def detail_table(rows: list[Row]) -> list[str]:
    out = [
        "| format | entries | measured | runs | best s | entries/s | peak RSS MiB "
        "| RSS growth MiB | traced peak MiB | retained MiB | working MiB | check |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        r = row.report
        best = row.best
        out.append(
            f"| {row.fmt} | {row.entries:,} | `{row.measure.label}` | {len(r.get('times', []))} "
            f"| {'' if best is None else f'{best:.3f}'} | {_rate(row.rate)} "
            f"| {_mib(r.get('peak_rss'))} | {_mib(r.get('rss_growth'))} "
            f"| {_mib(r.get('traced_peak'))} | {_mib(r.get('retained'))} "
            f"| {_mib(r.get('working'))} | {_status(row)} |"
        )
    return out


def goals(rows: list[Row]) -> list[str]:
    """Verdicts on the issue's goals: CAMT >= 50% of bare iterparse; CAMT memory flat."""
    out: list[str] = _reader_goals(rows)
    camt = [r for r in rows if r.measure.key == "camt.ours"]
    if not camt:
        return out
    floors = {r.entries: r for r in rows if r.measure.key == "camt.lxml"}
    ratios = []
    for row in camt:
        floor = floors.get(row.entries)
        if row.rate and floor and floor.rate:
            ratios.append((row.entries, row.rate / floor.rate))
    if ratios:
        text = ", ".join(f"{n:,}: {ratio:.0%}" for n, ratio in ratios)
        met = all(ratio >= 0.5 for _, ratio in ratios)
        out.append(f"- CAMT speed, goal >= 50% of bare lxml iterparse: {text} -> "
                   f"{'met' if met else 'NOT met'}.")
    else:
        out.append("- CAMT speed: not measured (parser not ready or failed).")
    working = [(r.entries, r.report["working"]) for r in camt if r.ok and "working" in r.report]
    if len(working) >= 2:
        (n_small, w_small), (n_big, w_big) = min(working), max(working)
        # Flat: the largest file needs at most 1.5x (+2 MiB) the working memory of the smallest.
        flat = w_big <= 1.5 * w_small + 2 * MIB
        text = ", ".join(f"{n:,}: {w / MIB:.1f} MiB" for n, w in working)
        out.append(
            f"- CAMT working memory, goal flat in file size: {text} "
            f"({n_big / n_small:.0f}x the entries, {w_big / max(w_small, 1):.1f}x the memory) -> "
            f"{'flat' if flat else 'NOT flat'} (criterion: largest <= 1.5 x smallest + 2 MiB)."
        )
    else:
        out.append("- CAMT working memory: needs at least two sizes measured.")
    return out


def _reader_goals(rows: list[Row]) -> list[str]:
    """Verdicts for MT940 (at least the mt-940 package's speed), OFX and OFX 2 (faster than
    ofxparse), each for the parser and its stream, and the streams' working memory flat."""
    out = []
    for fmt, goal, least in (("mt940", "the mt-940 package", 1.0),
                             ("ofx", "ofxparse on OFX 1.x SGML", 1.0),
                             ("ofx2", "ofxparse on OFX 2 XML", 1.0)):
        floors = {r.entries: r for r in rows if r.measure.key == FLOOR[fmt]}
        for key in (f"{fmt}.ours", f"{fmt}.stream"):
            ratios, missing = [], []
            for row in (r for r in rows if r.measure.key == key):
                floor = floors.get(row.entries)
                if row.rate and floor and floor.rate:
                    ratios.append((row.entries, row.rate / floor.rate))
                elif row.rate and floor and floor.report.get("status") in ("skipped", "timeout"):
                    missing.append(f"{row.entries:,}: floor {floor.report['status']}, ours "
                                   f"{row.rate:,.0f}/s")
            if not ratios and not missing:
                continue
            text = ", ".join([f"{n:,}: {ratio:.2f}x" for n, ratio in ratios] + missing)
            met = all(ratio >= least for _, ratio in ratios)
            out.append(f"- {MEASURES[key].label} on {fmt}, goal at least {goal}'s speed: {text}"
                       f" -> {'met' if met else 'NOT met'}.")
        working = sorted((r.entries, r.report["working"]) for r in rows
                         if r.measure.key == f"{fmt}.stream" and r.ok and "working" in r.report)
        if len(working) >= 2:
            w_small, w_big = working[0][1], working[-1][1]
            flat = w_big <= 1.5 * w_small + 2 * MIB
            text = ", ".join(f"{n:,}: {w / MIB:.1f} MiB" for n, w in working)
            out.append(f"- {fmt} stream working memory, goal flat in the entries: {text} -> "
                       f"{'flat' if flat else 'NOT flat'} (largest <= 1.5 x smallest + 2 MiB).")
    return out


def machine() -> list[str]:
    return run_info.machine(("lxml", "mt-940", "ofxparse", "beautifulsoup4"),
                            [f"- parser modules sha256: {parsers_digest()}"])


def parsers_digest() -> str:
    """A short digest of the parser modules ``parsers.parse`` loads (writers and the JSON
    form are not among them), so a table can be tied to the code it measured."""
    import parsers  # noqa: F401 - loads every format module and what they use

    digest = hashlib.sha256()
    for name in sorted(n for n in sys.modules if n == "parsers" or n.startswith("parsers.")):
        path = getattr(sys.modules[name], "__file__", None)
        if path:
            digest.update(name.encode() + b"\0" + Path(path).read_bytes())
    return digest.hexdigest()[:12]


def plan(args: argparse.Namespace) -> list[tuple[str, int, list[str]]]:
    """(format, size, measurement keys) in the order they run."""
    steps = []
    for fmt in args.formats:
        sizes = args.sizes or DEFAULT_SIZES[fmt]
        headline = min(sizes, key=lambda n: abs(n - HEADLINE_SIZE))
        for size in sizes:
            keys = [FLOOR[fmt]]
            if fmt == "mt940":
                keys.append("mt940.regex")
            keys.append(f"{fmt}.ours")
            if fmt in ("mt940", "ofx", "ofx2"):
                keys.append(f"{fmt}.stream")
            if fmt == "camt" and size == headline:
                keys.append("camt.pipeline")
            steps.append((fmt, size, keys))
    return steps


def profile(key: str, size: int, args: argparse.Namespace) -> int:
    """Run one measurement under cProfile and print where the time goes."""
    measure = MEASURES[key]
    path, expected = file_for(measure.fmt, size, args.seed, out=args.out,
                              dialect=args.mt940_dialect)
    data = path.read_bytes()
    parse = measure.load()
    profiler = cProfile.Profile()
    profiler.enable()
    result = parse(data)
    profiler.disable()
    problems = measure.check(result, expected)
    print(f"# profile of {measure.label} on {size:,} entries "
          f"({'ok' if not problems else '; '.join(problems)})")
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.strip_dirs().sort_stats("tottime").print_stats(args.profile_lines)
    stats.sort_stats("cumulative").print_stats(args.profile_lines)
    print(stream.getvalue())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        description="Benchmark the statement parsers against the raw floor in the same run.")
    parser.add_argument("--formats", default=",".join(FORMATS),
                        type=lambda s: [f for f in s.split(",") if f],
                        help="comma-separated: camt, mt940, ofx, ofx2 (default: all)")
    parser.add_argument("--sizes", type=lambda s: tuple(int(n) for n in s.split(",")),
                        help="entry counts for every format (default: camt 25k,50k,100k,200k; "
                             "mt940 20k,100k; ofx and ofx2 2.5k,10k,100k)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per measurement, each in a fresh process; best counts "
                             f"(a run over {LONG_RUN:g} s is not repeated)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds allowed to one run; a size predicted to need more from "
                             "the smaller sizes is skipped (default 120)")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip the tracemalloc runs (working memory), which take about "
                             f"{TRACE_SLOWDOWN}x the parse time")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--mt940-dialect", choices=("swift", "german"), default="swift",
                        help=":86: style of the MT940 file: /EREF/../NAME/.. or ?20..?32")
    parser.add_argument("--out", type=Path, default=OUT, help="generated files (bench/out)")
    parser.add_argument("--profile", metavar="KEY", choices=sorted(MEASURES),
                        help="profile one measurement instead (e.g. camt.ours) at --sizes")
    parser.add_argument("--profile-lines", type=int, default=25)
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help=f"print the tables of a saved run (each run saves {RESULTS} "
                             "in --out) instead of measuring")
    parser.add_argument("--worker", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("time", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--expected", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.formats) - set(FORMATS)
    if unknown:
        parser.error(f"unknown formats: {', '.join(sorted(unknown))}")

    if args.worker:
        expected = Expected(**json.loads(args.expected.read_text(encoding="utf-8")))
        worker(args.worker, args.mode, args.file, expected)
        return 0
    if args.profile:
        return profile(args.profile, (args.sizes or (HEADLINE_SIZE,))[0], args)
    if args.render:
        return render(*load(args.render))

    script = Path(__file__).resolve().relative_to(ROOT)
    header = [f"- command: `{shlex.join(['python', str(script), *argv])}`"]
    header += machine()
    digest = parsers_digest()
    print("\n".join(header), file=sys.stderr, flush=True)
    rows: list[Row] = []
    history: dict[str, list[tuple[int, float]]] = {}
    started = time.perf_counter()
    for fmt, size, keys in plan(args):
        rows += measure_size(fmt, size, keys, args, history)
        save(rows, header, args.out / RESULTS)  # a crash later loses nothing measured
    header.append(f"- the run took {time.perf_counter() - started:,.0f} s")
    if parsers_digest() != digest:
        header.append(f"- WARNING: parsers/*.py changed during the run (now {parsers_digest()}):"
                      " the rows may mix versions")
    save(rows, header, args.out / RESULTS)
    return render(rows, header)


RESULTS = "parsers-bench-results.json"


def save(rows: list[Row], header: list[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows_json = [{"fmt": r.fmt, "entries": r.entries, "file_bytes": r.file_bytes,
                  "key": r.measure.key, "report": r.report} for r in rows]
    path.write_text(json.dumps({"header": header, "rows": rows_json}, indent=1) + "\n",
                    encoding="utf-8")


def load(path: Path) -> tuple[list[Row], list[str]]:
    saved = json.loads(path.read_text(encoding="utf-8"))
    rows = [Row(r["fmt"], r["entries"], r["file_bytes"], MEASURES[r["key"]], r["report"])
            for r in saved["rows"]]
    return rows, saved["header"]


def render(rows: list[Row], header: list[str]) -> int:
    """Print the tables and the verdicts; exit status 1 if any result was wrong."""
    print("\n".join(header))
    print()
    print("\n".join(summary_table(rows)))
    print()
    print("\n".join(detail_table(rows)))
    print()
    print("\n".join(goals(rows)))
    bad = [r for r in rows if r.report.get("status") in ("wrong", "error")]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
