"""schemathesis against the served OpenAPI document: generated requests to every operation of
the management API, over real HTTP with a manage (admin) key, find no server error. Bounded to a
few examples per operation so that it runs in well under a minute.

(schemathesis' pytest plugin does not load under this pytest, so the operations are driven
through its Python API and Hypothesis directly.)"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from console.access.api import keys

EXAMPLES = 5


def test_no_operation_of_the_served_document_answers_a_server_error(live_server, warehouse_worker):
    token = keys.create_key("fuzz", "manage", role="admin").key
    schema = schemathesis.openapi.from_url(
        live_server.url + "/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(response, checks=[not_a_server_error])

        fuzz()
