"""Schemathesis against /api/openapi.json: generated requests to the process-instance and task
endpoints never get a 5xx, and every response matches the schema the API publishes."""
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

OPERATIONS = r"^(process_instances|tasks|attachments)_"


_dir = Path(tempfile.mkdtemp(prefix="djflow-fuzz-"))
client = demo_client(f"sqlite:///{_dir}/fuzz.db", attachments_dir=str(_dir / "files"))
schema = schemathesis.openapi.from_asgi("/api/openapi.json", client.app).include(operation_id_regex=OPERATIONS)


@pytest.fixture(scope="module")
def headers():
    staff = login(client, "staff1")
    for _ in range(3):  # real instances and tasks for the generated ids to hit
        r = client.post("/api/process-instances", headers=staff, json={"key": "approval_chain", "data": REQUEST})
        assert r.status_code == 201, r.text
    yield login(client, "kezhang")
    shutil.rmtree(_dir, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_5xx_and_match_the_schema(case, headers):
    # The two properties the API promises: no server error, and every documented response as
    # documented. (4xx for generated nonsense is expected and checked in the scenario tests.)
    response = case.call(headers=headers)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
