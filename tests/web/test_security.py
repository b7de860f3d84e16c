"""Token comparison and the raw-path guard."""

from __future__ import annotations

import pytest

from bl_reservoir.web.security import token_matches, unsafe_path


def test_token_matches():
    assert token_matches("abc", "abc")
    assert not token_matches("abd", "abc") and not token_matches("", "abc") and not token_matches(None, "abc")
    assert not token_matches("abc", None) and not token_matches("", "")  # no token configured: nothing matches
    assert token_matches("é-ü", "é-ü")


@pytest.mark.parametrize("raw", [b"/a/../b", b"/a/..", b"/..", b"/a/%2e%2e/b", b"/a/%2E%2e", b"/a/.%2e/b",
                                 b"/a%2fb", b"/a%2Fb", b"/a%5cb", b"/a\\b", b"/a%00b", b"/a/./b", b"/a/x..y"])
def test_unsafe(raw):
    assert unsafe_path(raw)


@pytest.mark.parametrize("raw", [b"/", b"/api/observations/GBT_1_fine/dedoppler/search/hits/3.png",
                                 b"/static/app.js", b"/a.b/c"])
def test_safe(raw):
    assert not unsafe_path(raw)
