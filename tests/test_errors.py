"""Server faults answer in the one error shape, and say nothing about their cause."""

import logging

import pytest

LEAKY_FAULT = "SELECT webhook_secret FROM agent -- s3cr3t-webhook-value"


@pytest.fixture
def faulty_client(app):
    def fail():
        raise RuntimeError(LEAKY_FAULT)

    app.add_url_rule("/agents/fault", "fault", fail)
    return app.test_client()


def test_an_unexpected_fault_is_a_500_in_the_error_shape_without_its_cause(faulty_client, caplog):
    with caplog.at_level(logging.ERROR):
        response = faulty_client.get("/agents/fault")

    assert response.status_code == 500
    assert response.content_type == "application/json"
    assert response.get_json() == {
        "error": "The server hit an unexpected error.",
        "code": "internal_error",
        "type": "internal_error",
    }
    body = response.get_data(as_text=True)
    assert "s3cr3t" not in body and "SELECT" not in body and "Traceback" not in body
    # The cause is kept for the operator, in the server's log.
    assert any(record.exc_info for record in caplog.records)
