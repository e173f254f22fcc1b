"""tooling.audit.service: which service is asked, and its trouble in words."""

from __future__ import annotations

import sys

import pytest
import requests

from tests.audit_support import OSV, OSV_FIXTURES, load
from tests.osv_server import OSVServer

service = load("audit.service")
audit = load("audit")
public_url = sys.modules["tooling"].public_url


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
        ({}, "osv", "ftp://example.invalid/", "^the OSV URL from --osv-url starts with ftp://; "),
        ({"PIP_AUDIT_OSV_URL": "osv.example"}, "osv", None, "PIP_AUDIT_OSV_URL is not a URL; "),
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


def test_a_redirect_to_another_host_is_refused_naming_both() -> None:
    with OSVServer([OSV_FIXTURES]) as server, OSVServer([OSV_FIXTURES]) as other:
        base = server.base_url
        osv = service.Service("osv", server.url)
        elsewhere = other.base_url.replace("127.0.0.1", "localhost")
        server.redirect = elsewhere
        with pytest.raises(audit.AuditError) as error:
            service.fetch_record(osv, "PYSEC-2020-99")
        assert other.requests == []
        server.redirect = other.base_url  # the same host, another port: followed
        assert service.fetch_record(osv, "PYSEC-2020-99")["id"] == "PYSEC-2020-99"
    assert error.value.exit_code == 3
    host, foreign = base.removeprefix("http://"), elsewhere.removeprefix("http://")
    assert str(error.value) == (
        f"the osv vulnerability service redirected the query from {host} to another host, "
        f"{foreign}: only the host of the OSV URL may answer; give the URL of the service that "
        f"answers, if it is trusted ({base}/v1/vulns/PYSEC-2020-99) while "
        "severities were looked up"
    )


def test_a_record_that_is_not_one_is_a_service_problem() -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        url = server.url
        server.junk = b'{"id": null, "affected": []}'
        with pytest.raises(audit.AuditError) as error:
            service.fetch_record(service.Service("osv", url), "PYSEC-2020-99")
    assert error.value.exit_code == 3
    assert str(error.value) == (
        "the osv vulnerability service answered something that is not a vulnerability report: "
        f"$.id is null, not a string ({url.removesuffix('query')}vulns/PYSEC-2020-99) "
        "while severities were looked up"
    )


# --- credentials are sent, never shown ----------------------------------------------------

SECRETS = ("alice", "S3CRET", "T0KEN", "F4AG")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:S3CRET@127.0.0.1:18601/v1/query", "http://127.0.0.1:18601/v1/query"),
        ("https://alice@osv.example/v1/query", "https://osv.example/v1/query"),
        ("https://osv.example/v1/query?token=T0KEN", "https://osv.example/v1/query"),
        ("https://osv.example/v1/query?a=1&key=T0KEN#F4AG", "https://osv.example/v1/query"),
        ("https://osv.example/v1/query#access_token=F4AG", "https://osv.example/v1/query"),
        ("http://alice:S3CRET@[::1]:8080/v1/query?T0KEN", "http://[::1]:8080/v1/query"),
        ("https://alice:p@ss:S3CRET@osv.example/v1/query", "https://osv.example/v1/query"),
    ],
)
def test_every_url_is_shown_without_user_info_query_or_fragment(url: str, shown: str) -> None:
    osv = service.resolve_service({}, "osv", url)
    assert osv.osv_url == url  # still asked with them
    assert public_url(url) == shown
    assert osv.describe() == f"osv at {shown}"
    assert osv.subject() == f"the osv vulnerability service ({shown})"
    assert not [s for s in SECRETS if s in osv.describe() + osv.subject()]


def test_records_are_asked_with_the_query_urls_credentials_and_token() -> None:
    osv = service.Service("osv", "https://alice:S3CRET@osv.example/v1/query?token=T0KEN")
    assert osv.record_url("PYSEC-1") == (
        "https://alice:S3CRET@osv.example/v1/vulns/PYSEC-1?token=T0KEN"
    )


@pytest.mark.parametrize(
    "url",
    ["ftp://alice:S3CRET@osv.example/v1/query", "file:///v1/query?token=T0KEN", "alice:S3CRET"],
)
def test_a_bad_osv_url_is_refused_without_echoing_its_secrets(url: str) -> None:
    with pytest.raises(audit.AuditError, match=r"give an http\(s\) URL such as") as error:
        service.resolve_service({"PIP_AUDIT_OSV_URL": url}, "osv")
    assert error.value.exit_code == 2
    assert not [s for s in SECRETS if s in str(error.value)]


# --- an unreachable service is diagnosed by cause ------------------------------------------


def failure_of(url: str, timeout: float = 5) -> str:
    try:
        requests.post(url, data="{}", timeout=timeout)
    except requests.RequestException as error:
        return str(service.request_failure(error, timeout))
    raise AssertionError(f"{url} answered")


def test_no_dns_answer_is_named() -> None:
    assert failure_of("http://alice:S3CRET@no-such-host.invalid/v1/query") == (
        "is unreachable: its host name has no DNS answer"
    )


def test_a_refused_connection_is_named() -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        url = server.url
    assert failure_of(url.replace("http://", "http://alice:S3CRET@")) == (
        "is unreachable: connection refused"
    )


def test_a_tls_failure_is_named() -> None:
    with OSVServer([OSV_FIXTURES]) as server:  # plain HTTP where TLS is expected
        found = failure_of(server.url.replace("http://", "https://"))
    assert found == "is unreachable: TLS failed (wrong version number)"


def test_a_timeout_is_named_with_its_seconds() -> None:
    with OSVServer([OSV_FIXTURES]) as server:
        server.delay = 2
        assert failure_of(server.url, timeout=0.5) == "did not answer within 0.5 s"


@pytest.mark.parametrize(
    ("arguments", "kept", "env"),
    [
        (["--tier", "base"], ["--tier", "base"], {}),
        (
            ["--service", "osv", "--osv-url", "http://alice:S3CRET@h/v1/query", "--tier=base"],
            ["--service", "osv", "--osv-url-env", "LOCKSTEP_OSV_URL", "--tier=base"],
            {"LOCKSTEP_OSV_URL": "http://alice:S3CRET@h/v1/query"},
        ),
        (
            ["--osv-url=https://h/v1/query?token=T0KEN"],
            ["--osv-url-env", "LOCKSTEP_OSV_URL"],
            {"LOCKSTEP_OSV_URL": "https://h/v1/query?token=T0KEN"},
        ),
        (["--osv-url"], ["--osv-url"], {}),  # argparse says what is missing
        (["--osv-url="], ["--osv-url="], {}),
        (["--osv-url", ""], ["--osv-url", ""], {}),
    ],
)
def test_an_osv_url_is_moved_off_the_command_line_nox_echoes(
    arguments: list[str], kept: list[str], env: dict[str, str]
) -> None:
    assert service.osv_url_off_the_command_line(arguments) == (kept, env)
