"""The multi-host test's guard: it says why it cannot run, and CI (PLOTJOBS_REQUIRE_NETNS=1) makes that a failure."""

from __future__ import annotations

import pytest

from tests.support import netns
from tests.system import test_many_hosts


def test_without_root_the_reason_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert netns.unavailable_reason() == "creating network namespaces needs root (CI runs as root)"


def test_without_namespaces_the_test_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "unavailable_reason", lambda: "no namespaces here")
    monkeypatch.delenv("PLOTJOBS_REQUIRE_NETNS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no namespaces here"):
        test_many_hosts._require_namespaces()
    monkeypatch.setenv("PLOTJOBS_REQUIRE_NETNS", "1")
    with pytest.raises(pytest.fail.Exception, match="PLOTJOBS_REQUIRE_NETNS=1"):
        test_many_hosts._require_namespaces()
