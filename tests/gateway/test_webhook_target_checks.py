"""The dispatcher's address check per attempt (``webhook_http.TargetChecks``): a URL that
``target_problem`` found fine is taken as fine for a while, so a busy subscription on a host
name is not resolved at every delivery; a refused URL is checked again at every attempt.

The verdicts come from a stand-in for ``target_problem`` that counts its calls; nothing
here waits for the time to live to pass (0 means: never reuse).
"""

from __future__ import annotations

import pytest

from gateway import webhook_http
from gateway.webhook_http import TargetChecks

GOOD, BAD = "https://crm.example/hooks", "https://inside.example/hooks"


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs ``target_problem`` was asked about, in order; BAD is refused."""
    asked: list[str] = []

    async def problem(url: str, *, allow_private: bool, timeout: float = 5.0) -> str | None:
        assert not allow_private and timeout == 7.0
        asked.append(url)
        return "host inside.example resolves to a non-public address" if url == BAD else None

    monkeypatch.setattr(webhook_http, "target_problem", problem)
    return asked


async def test_a_fine_url_is_not_checked_again_within_the_time(checked: list[str]) -> None:
    checks = TargetChecks(allow_private=False, timeout=7.0, ttl=3600)
    for _ in range(3):
        assert await checks.problem(GOOD) is None
        assert await checks.problem(BAD) == "host inside.example resolves to a non-public " \
                                            "address"
    assert checked == [GOOD, BAD, BAD, BAD]


async def test_past_its_time_the_url_is_checked_again(checked: list[str]) -> None:
    checks = TargetChecks(allow_private=False, timeout=7.0, ttl=0)
    assert await checks.problem(GOOD) is None
    assert await checks.problem(BAD) is not None
    assert await checks.problem(GOOD) is None
    assert checked == [GOOD, BAD, GOOD]


async def test_the_real_check_refuses_loopback_through_it() -> None:
    checks = TargetChecks(allow_private=False, timeout=5.0)
    problem = await checks.problem("https://127.0.0.1:9/hooks")
    assert problem == await webhook_http.target_problem("https://127.0.0.1:9/hooks",
                                                        allow_private=False)
    assert problem is not None
    assert await TargetChecks(allow_private=True).problem("http://127.0.0.1:9/hooks") is None
