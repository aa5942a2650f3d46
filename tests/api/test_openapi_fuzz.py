"""Schemathesis against /api/openapi.json: generated requests to every operation never get a 5xx,
and every response matches the schema the API publishes."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from tests.api.helpers import demo_client, login  # noqa: E402
from tests.helpers import REQUEST  # noqa: E402

OPERATIONS = r".*"


_dir = Path(tempfile.mkdtemp(prefix="djflow-fuzz-"))
client = demo_client(f"sqlite:///{_dir}/fuzz.db", attachments_dir=str(_dir / "files"))
schema = schemathesis.openapi.from_asgi("/api/openapi.json", client.app).include(operation_id_regex=OPERATIONS)


@pytest.fixture(scope="module")
def signed_in():
    staff = login(client, "staff1")
    for _ in range(3):  # real instances and tasks for the generated ids to hit
        r = client.post("/api/process-instances", headers=staff, json={"key": "approval_chain", "data": REQUEST})
        assert r.status_code == 201, r.text
    # a 党务工作者 (broad business rights in his orgs) and the system administrator (accounts, orgs)
    yield {who: login(client, who) for who in ("dangwei", "admin")}
    shutil.rmtree(_dir, ignore_errors=True)


@pytest.mark.parametrize("who", ["dangwei", "admin"])
@schema.parametrize()
# derandomize: the same examples every run, so CI is repeatable (a new random find would otherwise
# fail an unrelated change); widen or reseed deliberately to explore further.
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_generated_requests_get_no_5xx_and_match_the_schema(case, signed_in, who):
    headers = signed_in[who]
    # The two properties the API promises: no server error, and every documented response as
    # documented. (4xx for generated nonsense is expected and checked in the scenario tests.)
    response = case.call(headers=headers)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
