"""Where the tests find their files."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
DEMO_STATEMENTS = ROOT / "gateway" / "demo_data" / "statements"
DEMO_CAMT = DEMO_STATEMENTS / "nordbank-2026-11-20.camt.xml"
DEMO_MT940 = DEMO_STATEMENTS / "muster-bank-2026-11-20.sta"
