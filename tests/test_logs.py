"""Logs: one JSON access line per request with its id; no secret, key or body; traces inside."""

import contextlib
import json
import logging
from datetime import datetime, timedelta

import pytest

import models
from logs import configure_logging
from tests.conftest import VALID_AGENT

API_KEY = "key-that-must-never-be-logged-1234"
SECRET = "webhook-secret-never-logged-5678"
BODY_MARKER = "Body text that stays out of the logs"


class StderrLines:
    """Every line the service wrote to stderr since the test began: all of them must be JSON."""

    def __init__(self, capsys):
        self.capsys = capsys
        self.lines = []

    def records(self):
        self.lines += self.capsys.readouterr().err.splitlines()
        return [json.loads(line) for line in self.lines]


@contextlib.contextmanager
def server_logging(level):
    """Logging as the server's entry points configure it, undone afterwards."""
    logger = logging.getLogger("agents")
    source_file = logging._srcfile
    configure_logging(level)
    try:
        yield
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
        logging._srcfile = source_file


@pytest.fixture
def log_lines(capsys):
    with server_logging("info"):
        yield StderrLines(capsys)


def access_lines(log_lines):
    return [record for record in log_lines.records() if record["logger"] == "agents.access"]


def test_each_request_writes_one_json_access_line_under_the_id_it_was_sent(client, log_lines):
    response = client.get("/agents/not-an-id", headers={"X-Request-ID": "trace-42.a:b"})

    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "trace-42.a:b"
    [line] = access_lines(log_lines)
    assert line["request_id"] == "trace-42.a:b"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/agents/not-an-id", 404)
    assert line["duration_ms"] >= 0
    assert line["level"] == "INFO" and "time" in line


@pytest.mark.parametrize(
    "sent",
    [None, "", "with space", "x" * 129, '{"forged": "line"}', "naïve"],
)
def test_a_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(sent, client, log_lines):
    headers = {} if sent is None else {"X-Request-ID": sent}

    response = client.get("/healthz", headers=headers)

    generated = response.headers["X-Request-ID"]
    assert generated != sent and len(generated) == 32 and int(generated, 16) >= 0
    assert access_lines(log_lines)[0]["request_id"] == generated


def test_no_api_key_secret_body_or_query_reaches_the_logs(make_app, log_lines):
    client = make_app(API_KEYS=API_KEY).test_client()
    auth = {"Authorization": f"Bearer {API_KEY}"}
    created = client.post(
        "/agents", json={**VALID_AGENT, "name": BODY_MARKER, "webhook_secret": SECRET}, headers=auth
    )
    url = f"/agents/{created.get_json()['agent']['id']}"
    client.patch(url, json={"webhook_secret": SECRET + "-2"}, headers=auth)
    client.patch(url, json={"webhook_secret": "short"}, headers=auth)
    client.get(f"/agents?q={SECRET}", headers=auth)
    client.get("/agents", headers={"Authorization": f"Bearer {API_KEY}-wrong"})

    assert [line["status"] for line in access_lines(log_lines)] == [201, 200, 400, 200, 401]
    logged = "\n".join(log_lines.lines)
    for never in (API_KEY, SECRET, BODY_MARKER, "short"):
        assert never not in logged


def test_an_unhandled_error_is_logged_with_its_trace_and_answered_without_it(
    client, log_lines, monkeypatch
):
    def fail(*args, **kwargs):
        raise RuntimeError("the disk controller caught fire")

    monkeypatch.setattr(models, "create_agent", fail)

    response = client.post(
        "/agents",
        json={**VALID_AGENT, "webhook_secret": SECRET},
        headers={"X-Request-ID": "boom-1"},
    )

    assert response.status_code == 500
    assert response.get_json() == {
        "error": "The server hit an unexpected error.",
        "code": "internal_error",
        "type": "internal_error",
    }
    [error] = [record for record in log_lines.records() if record["level"] == "ERROR"]
    assert error["request_id"] == "boom-1"
    assert error["message"] == "Unhandled error while serving POST /agents"
    assert (
        "Traceback" in error["exc_info"] and "the disk controller caught fire" in error["exc_info"]
    )
    assert SECRET not in "\n".join(log_lines.lines)


def test_an_access_line_is_shaped_as_the_log_formatter_shapes_every_other_line(client, log_lines):
    client.get("/healthz", headers={"X-Request-ID": "shape-1"})
    [access] = access_lines(log_lines)
    fields = {key: access[key] for key in ("request_id", "method", "path", "status", "duration_ms")}

    logging.getLogger("agents.access").info("request", extra=fields)

    [formatted] = log_lines.records()[1:]
    assert list(formatted) == list(access)
    assert {**formatted, "time": access["time"]} == access
    assert datetime.fromisoformat(access["time"]).utcoffset() == timedelta(0)


def test_log_level_warning_drops_the_access_lines(client, capsys):
    with server_logging("warning"):
        assert client.get("/healthz").headers["X-Request-ID"]
        assert access_lines(StderrLines(capsys)) == []


def test_building_the_app_configures_no_logging(make_app):
    logger = logging.getLogger("agents")
    source_file = logging._srcfile

    make_app(LOG_LEVEL="debug").test_client().get("/healthz")

    assert (logger.handlers, logger.level, logging._srcfile) == ([], logging.NOTSET, source_file)


def test_a_request_is_answered_when_its_access_line_cannot_be_written(client, monkeypatch):
    class FullDisk:
        def write(self, text):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("sys.stderr", FullDisk())

    response = client.post("/agents", json=VALID_AGENT)

    assert response.status_code == 201
    assert client.get(response.headers["Location"]).status_code == 200


def test_a_broken_query_is_a_500_with_its_trace_logged_not_a_503(
    client, create_agent, log_lines, monkeypatch
):
    agent = create_agent()
    monkeypatch.setattr(models, "SELECT_AGENT", "SELECT no_such_column FROM agent WHERE ? = ?")

    response = client.get(f"/agents/{agent['id']}")

    assert response.status_code == 500
    assert response.get_json()["code"] == "internal_error"
    assert "Retry-After" not in response.headers
    [error] = [line for line in log_lines.records() if line["level"] == "ERROR"]
    assert "no_such_column" in error["exc_info"]
