"""Fuzzing /api/v1 from its own OpenAPI document with schemathesis: no input, valid or
not, may produce a server error (5xx), and successful answers must match the documented
response schemas.

Runs against the app on the demo database (WSGI, in-process). For every operation
Hypothesis draws examples from the schemas (positive) and against them (negative),
derandomised so a failure repeats.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from gis_core.access import create_api_key
from gis_core.db import create_engine
from gis_core.settings import Settings
from webmap.app import create_app

MAX_EXAMPLES = 60
# The planners' zone analysis and the indicators: fuzzed with a planner's key, so every
# request reaches the code behind the role check.
WITH_PLANNER_KEY = (
    "GET /api/v1/analysis/zones",
    "GET /api/v1/analysis/compare",
    "GET /api/v1/indicators",
    "GET /api/v1/indicators/runs",
)
OPERATIONS = (
    "POST /api/v1/location-check",
    "GET /api/v1/parcels/{cadastral_number}",
    "GET /api/v1/parcels",
    "GET /api/v1/addresses",
    "POST /api/v1/validations/location",
    # The clerks' acts: anonymous fuzzing meets the authentication first (401), never a 5xx.
    "POST /api/v1/acts",
    "GET /api/v1/acts/csrf",
    "GET /api/v1/acts/{act_id}",
    "PATCH /api/v1/acts/{act_id}",
    "POST /api/v1/acts/{act_id}/extend",
    "POST /api/v1/acts/{act_id}/cancel",
    "GET /api/v1/acts/queue",
    "POST /api/v1/acts/queue/{item_id}/resolve",
    "POST /api/v1/acts/queue/{item_id}/dismiss",
    *WITH_PLANNER_KEY,
)
# Operations with no parameter and no body: there is nothing to get wrong (negative mode).
WITHOUT_INPUT = ("GET /api/v1/acts/csrf", "GET /api/v1/indicators")
CASES = [
    (label, mode)
    for label in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and label in WITHOUT_INPUT)
]


@pytest.fixture(scope="module")
def api_schema(location_demo_settings: Settings) -> Iterator[schemathesis.BaseSchema]:
    app: Flask = create_app(location_demo_settings.model_copy(update={"api_max_numbers": 5}))
    app.testing = True
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture(scope="module")
def planner_key(location_demo_settings: Settings) -> str:
    engine = create_engine(location_demo_settings)
    with engine.begin() as conn:
        key = create_api_key(conn, "fuzzing planner", "planner", rate_limit_per_minute=1_000_000)
    engine.dispose()
    return key


def test_every_operation_is_fuzzed(api_schema: schemathesis.BaseSchema) -> None:
    labels = set()
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # an operation schemathesis cannot read
        labels.add(result.ok().label)
    assert labels == set(OPERATIONS)


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_no_input_makes_a_server_error(
    api_schema: schemathesis.BaseSchema, planner_key: str, label: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None
    statuses: list[int] = []
    headers = {"X-API-Key": planner_key} if label in WITH_PLANNER_KEY else None

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        statuses.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code < 300:
            case.validate_response(response, checks=[response_schema_conformance])

    fuzz()
    assert statuses and max(statuses) < 500
    if headers is not None:  # the key got every request past the authentication
        assert not {401, 403} & set(statuses), statuses
        if mode is GenerationMode.POSITIVE:
            assert 200 in statuses, statuses
