"""tooling.audit.service: which service is asked, and its trouble in words."""

from __future__ import annotations

import pytest

from tests.audit_support import OSV, OSV_FIXTURES, load
from tests.osv_server import OSVServer

service = load("audit.service")
audit = load("audit")


def test_service_defaults_to_pypi_and_honours_env_then_arguments() -> None:
    assert service.resolve_service({}) == service.Service("pypi")
    assert service.resolve_service(OSV) == service.Service("osv", OSV["PIP_AUDIT_OSV_URL"])
    explicit = service.resolve_service(OSV, "osv", "http://127.0.0.1:9/v1/query")
    assert explicit.osv_url == "http://127.0.0.1:9/v1/query"
    assert service.resolve_service({"PIP_AUDIT_VULNERABILITY_SERVICE": "osv"}).osv_url == (
        "https://api.osv.dev/v1/query"
    )
    assert service.resolve_service(OSV, "pypi") == service.Service("pypi")
    assert explicit.records_url == "http://127.0.0.1:9/v1/vulns"
    assert service.Service("pypi").records_url is None


@pytest.mark.parametrize(
    ("env", "name", "url", "message"),
    [
        ({"PIP_AUDIT_VULNERABILITY_SERVICE": "snyk"}, None, None, "unknown vulnerability service"),
        ({}, "pypi", "http://127.0.0.1:9/v1/query", "only applies to the osv service"),
        ({}, "osv", "ftp://example.invalid/", "not an http"),
    ],
)
def test_bad_service_settings_are_configuration_errors(
    env: dict[str, str], name: str | None, url: str | None, message: str
) -> None:
    with pytest.raises(audit.AuditError, match=message) as error:
        service.resolve_service(env, name, url)
    assert error.value.exit_code == 2


def test_records_are_fetched_and_unknown_ids_are_none() -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        base = server.base_url
        osv = service.Service("osv", server.url)
        assert service.fetch_record(osv, "PYSEC-2020-99")["aliases"] == [
            "CVE-2020-13757",
            "GHSA-537h-rv9q-vvph",
        ]
        assert service.fetch_record(osv, "NOPE-1") is None
        server.fail = True
        with pytest.raises(audit.AuditError) as error:
            service.fetch_record(osv, "PYSEC-2020-99")
    assert error.value.exit_code == 3
    assert str(error.value) == (
        "the osv vulnerability service answered HTTP 500 "
        f"({base}/v1/vulns/PYSEC-2020-99) while severities were looked up"
    )
