"""schemathesis against /openapi.json: generated requests to every operation find no server error."""

from __future__ import annotations

import pytest

#: Event streams end only when their job or campaign does: they are tested in test_api.py.
STREAMS = r".*/events$"


@pytest.mark.slow
def test_no_server_error(client):
    schemathesis = pytest.importorskip("schemathesis")  # here, not at collection: it and Hypothesis take ~1 s
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app).exclude(path_regex=STREAMS)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    seen: dict[str, set[int]] = {}

    for operation in operations:
        _checker(operation, seen)()
    assert set(seen) == {op.label for op in operations}
    # writes without the token are refused, whatever the body
    assert seen["POST /api/jobs"] <= {401, 422}


def _checker(operation, seen: dict[str, set[int]]):
    """A Hypothesis test of one operation: every generated request is answered below 500."""
    from hypothesis import HealthCheck, given, settings

    @given(operation.as_strategy())
    @settings(max_examples=12, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call()
        seen.setdefault(operation.label, set()).add(response.status_code)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}")

    return check
