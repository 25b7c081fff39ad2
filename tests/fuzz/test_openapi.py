"""Schemathesis over the server's own ``/openapi.json``, with a valid API key.

Every operation is called with cases schemathesis derives from the document (random valid
and invalid data under the fuzz profile, then its own runner's coverage phase: boundaries,
broken constraints, wrong content types, undocumented methods), and every response is
checked against the document: no 5xx, a documented status code, a documented content type
and headers, a body matching the documented schema (error bodies included, with their
``code`` drawn from the documented set), invalid input refused and valid input accepted.

The server is the test's own: schemathesis renames the account, rotates its key (the test
follows the new key) and registers users with webhook URLs, so webhook deliveries go through
a proxy on a closed loopback port and never leave the machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis.errors import Unsatisfiable
from prometheus_client.parser import text_string_to_metric_families
from schemathesis import GenerationMode

from tests.conftest import LiveServer, NewDatabase
from tests.fuzz.conftest import FUZZ, TALLY, cases
from tests.serverproc import ServerProcess, free_port

# The two magic-link endpoints answer 503 by design (no identity provider configured).
NOT_CONFIGURED_PATHS = "^/auth/magic-link/"
METRICS_TOKEN = "fuzz-metrics"


@pytest.fixture(scope="module")
def openapi_server(
    tmp_path_factory: pytest.TempPathFactory, new_database: NewDatabase
) -> Iterator[LiveServer]:
    """One server for this module's runs (they leave users, messages and renames behind)."""
    closed = f"http://127.0.0.1:{free_port()}"
    env = {
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "ALL_PROXY": closed,
        "NO_PROXY": "",
        "no_proxy": "",
        "TOKEN_BOWL_METRICS_TOKEN": METRICS_TOKEN,
    }
    data_dir = tmp_path_factory.mktemp("openapi")
    proc = ServerProcess(data_dir, env=env, database_url=new_database(data_dir))
    proc.start()
    try:
        yield LiveServer(proc)
    finally:
        proc.stop()


class KeyHolder:
    """The account's current key: a rotation through the API replaces it."""

    def __init__(self, key: str) -> None:
        self.key = key


@pytest.fixture(scope="module")
def api_key(openapi_server: LiveServer) -> KeyHolder:
    return KeyHolder(openapi_server.register(username="schemathesis").api_key)


def load_schema(server: LiveServer) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "checks": {
                "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx"]},
                # Schema-valid input may still break a documented rule the schema cannot
                # state (a `since` that is not ISO-8601, a user id that is not a UUID, the bot
                # role): 400 with a stable code. A 422 for schema-valid input still fails:
                # then the document promises more than the validator accepts.
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]
                },
            },
            "operations": [
                {
                    "include-path-regex": NOT_CONFIGURED_PATHS,
                    "checks": {
                        "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
                        "positive_data_acceptance": {"expected-statuses": ["503"]},
                    },
                }
            ],
        }
    )
    return schemathesis.openapi.from_url(f"{server.http_url}/openapi.json", config=config)


def test_every_operation_conforms_to_the_openapi_document(
    openapi_server: LiveServer, api_key: KeyHolder
) -> None:
    # schemathesis.pytest.from_fixture would be the natural entry point, but it reads a
    # private pytest attribute that pytest 9 removed; each operation's own strategy, under
    # the fuzz profile, does the same work.
    schema = load_schema(openapi_server)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        modes = [GenerationMode.POSITIVE]
        # Only a query or a body has constraints to break (a plain string in a path or a header
        # has none); asking for invalid data elsewhere burns hundreds of rejected attempts.
        if operation.query or operation.body:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @settings(FUZZ, max_examples=cases(15))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case) -> None:
                failed = True
                try:
                    response = case.call_and_validate(
                        headers={
                            "X-API-Key": api_key.key,
                            "Authorization": f"Bearer {METRICS_TOKEN}",
                        },
                        timeout=30,
                    )
                    if case.path == "/users/me/regenerate-api-key" and response.status_code == 200:
                        api_key.key = response.json()["api_key"]
                    failed = False
                finally:
                    TALLY.record("schemathesis", failed)

            try:
                call()
            except Unsatisfiable:
                # nothing in this operation can be made invalid (no body, no constrained
                # parameter): there is no negative case to try
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:
                # schemathesis raises a group of failures; collect every operation's, then
                # report them all at once
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    print(TALLY.line("schemathesis"), f"over {operations} operations")
    assert not failures, "\n\n".join(failures)
    # Webhook targets schemathesis invented went to the refusing proxy, never delivered.
    metrics = httpx.get(
        f"{openapi_server.http_url}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=30,
    ).text
    delivered = [
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "tbc_webhooks_delivered_total"
    ]
    assert delivered == [0], metrics


COVERAGE_CONFIG = """
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx"]

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
include-path-regex = "^/auth/magic-link/"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
checks.positive_data_acceptance.expected-statuses = ["503"]
"""


def test_coverage_phase_finds_nothing(
    openapi_server: LiveServer, api_key: KeyHolder, tmp_path: Path
) -> None:
    """schemathesis's own runner, coverage phase: for every operation the boundary values of
    each documented constraint, each constraint broken, missing and unexpected parameters,
    wrong content types and undocumented methods (whose 405 must list the right ``Allow``),
    with every check. The same expectations as above, as a config file."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(COVERAGE_CONFIG)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{openapi_server.http_url}/openapi.json",
        "--header",
        f"X-API-Key: {api_key.key}",
        "--header",
        f"Authorization: Bearer {METRICS_TOKEN}",
        "--checks",
        "all",
        "--phases",
        "coverage",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        # the key stays the run's own; test_every_operation_... rotates it
        "--exclude-path-regex",
        "regenerate-api-key",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    summary = re.search(r"(\d+) generated", run.stdout)
    tried = int(summary.group(1)) if summary else 0
    found = re.search(r"found (\d+) unique failures?", run.stdout)
    failing = int(found.group(1)) if found else 0
    for case in range(tried):
        TALLY.record("schemathesis coverage phase", case < failing)
    print(f"schemathesis coverage phase: {tried} cases, exit code {run.returncode}")
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert tried > 0, run.stdout
