"""The platform's TypeScript SDK (hmsovereign-node 1.0.1) against this service, as it speaks.

`SdkClient` below is written from the SDK's `src/client.ts`, `src/errors.ts` and
`src/resources/assistants.ts`: the URL it builds (base URL ending in /api/v1, one trailing slash
dropped), the headers it and Node's fetch send, a body only when there is one, its retries (any
method, on 5xx, 429, network errors and timeouts, sleeping 1 s then 2 s, Retry-After ignored),
the member it unwraps from each answer, and the error class each status becomes, with `type`
and `param` read into `code` and `param`. It talks HTTP to a real gunicorn in test mode under
AGENTS_URL_PREFIX=/api/v1 with an API key; the journal shows each request as the service got it.
"""

import http.client
import json
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from tests.live_server import LiveServer

API_KEY = "fl_test_contract_key"
USER_AGENT = "hmsovereign-node/1.0.0"
WEBHOOK_SECRET = "whsec-contract-Correct-Horse"
TOOL_SECRET = "tool-secret-contract-Staple"


class HmsSovereignError(Exception):
    pass


class ApiRequestError(HmsSovereignError):
    def __init__(self, message, status, body=None):
        super().__init__(message)
        self.status = status
        self.code = (body or {}).get("type")
        self.param = (body or {}).get("param")


class AuthenticationError(ApiRequestError):
    def __init__(self, message):
        super().__init__(message, 401)


class InsufficientCreditsError(ApiRequestError):
    def __init__(self, message):
        super().__init__(message, 402)


class NotFoundError(ApiRequestError):
    def __init__(self, message):
        super().__init__(message, 404)


class RateLimitError(ApiRequestError):
    def __init__(self, message, retry_after=None):
        super().__init__(message, 429)
        self.retry_after = retry_after


class SdkClient:
    """The SDK's HttpClient and Assistants resource, request for request."""

    def __init__(self, api_key, base_url, max_retries=2, timeout=30.0, sleep=time.sleep):
        if not api_key:
            raise AuthenticationError(
                "API key is required. Get yours at https://app.hmsovereign.com/settings"
            )
        self.api_key = api_key
        self.base_url = base_url[:-1] if base_url.endswith("/") else base_url
        self.max_retries = max_retries
        self.timeout = timeout
        self.sleep = sleep
        self.waits = []

    # --- the Assistants resource ---

    def list(self):
        return self.request("GET", "/assistants")["assistants"]

    def get(self, assistant_id):
        return self.request("GET", f"/assistants/{assistant_id}")["assistant"]

    def create(self, params):
        return self.request("POST", "/assistants", params)["assistant"]

    def update(self, assistant_id, params):
        return self.request("PATCH", f"/assistants/{assistant_id}", params)["assistant"]

    def delete(self, assistant_id):
        self.request("DELETE", f"/assistants/{assistant_id}")

    # --- the HttpClient ---

    def request(self, method, path, body=None):
        last_error = None
        for attempt in range(self.max_retries + 1):
            if attempt > 0:
                delay = min(1000 * 2 ** (attempt - 1), 8000) / 1000
                self.waits.append(delay)
                self.sleep(delay)
            try:
                status, reason, headers, raw = self._fetch(method, path, body)
            except OSError as error:  # fetch failed or the attempt timed out: retried
                last_error = error
                continue
            if 200 <= status < 300:
                if status == 204:
                    return None
                try:
                    return json.loads(raw)
                except ValueError as error:  # response.json() threw: retried
                    last_error = error
                    continue
            try:
                error_body = json.loads(raw)
            except ValueError:
                error_body = None
            if not isinstance(error_body, dict):
                error_body = None
            message = (error_body or {}).get("error") or (error_body or {}).get("message") or reason
            error = self._error(status, message, error_body, headers)
            if status < 500 and status != 429:
                raise error
            last_error = error
        raise last_error

    def _fetch(self, method, path, body):
        url = urlsplit(self.base_url + path)
        # What Node's fetch sends beside the SDK's three headers, in its order.
        headers = {
            "Host": url.netloc,
            "Connection": "keep-alive",
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
            "Accept-Language": "*",
            "Sec-Fetch-Mode": "cors",
            "Accept-Encoding": "gzip, deflate",
        }
        # `body: options.body ? JSON.stringify(options.body) : undefined`
        data = None
        if body:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["Content-Length"] = str(len(data))
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=self.timeout)
        try:
            connection.putrequest(method, url.path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders(data)
            response = connection.getresponse()
            return response.status, response.reason, response.headers, response.read()
        finally:
            connection.close()

    @staticmethod
    def _error(status, message, body, headers):
        if status == 401:
            return AuthenticationError(message)
        if status == 402:
            return InsufficientCreditsError(message)
        if status == 404:
            return NotFoundError(message)
        if status == 429:
            retry_after = headers.get("Retry-After")
            return RateLimitError(message, int(retry_after) if retry_after else None)
        return ApiRequestError(message, status, body)


# --- the server and what it was sent --------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdk-contract")
    with LiveServer(
        folder / "agents.db",
        AGENTS_TEST_MODE="1",
        AGENTS_URL_PREFIX="/api/v1",
        AGENTS_API_KEYS=API_KEY,
    ) as live:
        yield live


def double_route(server, method, path, body=None):
    response = requests.request(
        method,
        f"{server.url}/_test{path}",
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )
    assert response.ok, response.text
    return response.json()


@pytest.fixture
def sdk(server):
    """The SDK as a service would configure it for this server; the service starts empty."""
    double_route(server, "POST", "/reset")
    # Its waits are recorded rather than slept; a test says how long they would have been.
    return SdkClient(API_KEY, f"{server.url}/api/v1", sleep=lambda seconds: None)


def received(server, **query):
    journal = requests.get(
        f"{server.url}/_test/requests",
        params=query,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    ).json()["requests"]
    return journal


def assert_sent_as_the_sdk_does(entry, method, path, body=None):
    assert (entry["method"], entry["path"]) == (method, path)
    headers = entry["headers"]
    assert headers["Authorization"] == "[redacted]"  # it was there, and the service kept it out
    assert headers["Content-Type"] == "application/json"  # on GET and DELETE too
    assert headers["User-Agent"] == USER_AGENT
    assert "Idempotency-Key" not in headers
    assert entry["body"] == body


# --- each method: the request it sends, the member it unwraps --------------------------------


def test_list_sends_a_bare_get_and_unwraps_assistants(server, sdk):
    created = sdk.create({"name": "Listed"})

    listed = sdk.list()

    assert listed == [created]
    assert_sent_as_the_sdk_does(received(server, method="GET")[-1], "GET", "/api/v1/assistants")


def test_create_posts_its_params_as_json_and_unwraps_assistant(server, sdk):
    params = {"name": "Customer Support", "first_message": "Hoi!", "gdpr_mode": True}

    created = sdk.create(params)

    assert created["name"] == "Customer Support" and created["gdpr_mode"] is True
    [entry] = received(server, method="POST")
    assert_sent_as_the_sdk_does(entry, "POST", "/api/v1/assistants", params)
    assert entry["headers"]["Content-Length"] == str(len(json.dumps(params, separators=(",", ":"))))
    assert entry["status"] == 201


def test_get_sends_the_id_in_the_path_and_unwraps_assistant(server, sdk):
    created = sdk.create({"name": "Fetched"})

    assert sdk.get(created["id"]) == created
    assert_sent_as_the_sdk_does(
        received(server, method="GET")[-1], "GET", f"/api/v1/assistants/{created['id']}"
    )


def test_update_patches_only_the_given_fields_and_unwraps_assistant(server, sdk):
    created = sdk.create({"name": "Before", "first_message": "Hallo"})

    updated = sdk.update(created["id"], {"name": "After"})

    assert updated["name"] == "After" and updated["first_message"] == "Hallo"
    assert_sent_as_the_sdk_does(
        received(server, method="PATCH")[-1],
        "PATCH",
        f"/api/v1/assistants/{created['id']}",
        {"name": "After"},
    )


def test_delete_takes_the_200_success_answer_and_the_assistant_is_gone(server, sdk):
    created = sdk.create({"name": "Deleted"})

    assert sdk.delete(created["id"]) is None
    entry = received(server, method="DELETE")[-1]
    assert_sent_as_the_sdk_does(entry, "DELETE", f"/api/v1/assistants/{created['id']}")
    assert entry["status"] == 200
    with pytest.raises(NotFoundError):
        sdk.get(created["id"])


def test_a_base_url_with_a_trailing_slash_reaches_the_same_paths(server, sdk):
    slashed = SdkClient(API_KEY, f"{server.url}/api/v1/")
    assert slashed.list() == []
    assert received(server)[-1]["path"] == "/api/v1/assistants"


# --- the README's example and a configuration using every SDK-typed field ---------------------

README_EXAMPLE = {
    "name": "Customer Support",
    "first_message": "Hello, how can I help you today?",
    "llm_config": {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "You are a helpful customer support agent."}],
    },
    "stt_config": {"provider": "deepgram", "model": "nova-3-general", "language": "nl"},
    "tts_config": {"provider": "elevenlabs", "voice_id": "ukiwGs47sHyibruHJ1vg"},
}


def test_the_readme_example_is_refused_for_the_language_the_reference_page_requires(server, sdk):
    with pytest.raises(ApiRequestError) as refused:
        sdk.create(README_EXAMPLE)

    error = refused.value
    assert type(error) is ApiRequestError and error.status == 400
    assert str(error) == "tts_config.language is required."
    assert (error.code, error.param) == ("validation_error", "tts_config.language")
    assert len(received(server, method="POST")) == 1  # a 400 is not retried
    assert sdk.list() == []


def test_the_readme_example_with_a_language_is_created(sdk):
    example = {**README_EXAMPLE, "tts_config": {**README_EXAMPLE["tts_config"], "language": "nl"}}

    created = sdk.create(example)

    assert created["tts_config"]["model"] == "eleven_flash_v2_5"
    assert created["llm_config"]["messages"] == example["llm_config"]["messages"]
    assert sdk.get(created["id"]) == created


TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order by its number.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
    "server": {"url": "https://tools.acme.example/orders", "secret": TOOL_SECRET},
    "async": False,
}
# AssistantCreateParams, every member; its configs use every member of their SDK types.
FULL = {
    "name": "Every Field",
    "business_name": "Acme Corp",
    "notification_email": "support@acme.example",
    "first_message": "Goedemiddag, u spreekt met Acme.",
    "is_active": True,
    "max_duration_seconds": 900,
    "autonomous_silence_handling": True,
    "silence_timeout_seconds": 8,
    "voicemail_detection": True,
    "voicemail_message": "Bel ons later terug.",
    "gdpr_mode": True,
    "webhook_url": "https://hooks.acme.example/voice",
    "webhook_secret": WEBHOOK_SECRET,
    "webhook_events": ["assistant-request", "tool-calls", "status-update", "end-of-call-report"],
    "stt_config": {
        "provider": "gladia",
        "model": "solaria-1",
        "language": "nl",
        "keyterms": ["Acme"],
        "languages": ["nl", "en"],
        "code_switching": True,
        "region": "eu-west",
        "endpointing": 0.05,
        "custom_vocabulary": ["HMS Sovereign", "Flireo"],
        "translation_enabled": True,
        "translation_target_languages": ["en"],
    },
    "llm_config": {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "temperature": 0.4,
        "messages": [{"role": "system", "content": "Je bent de assistent van Acme."}],
        "tools": [TOOL],
    },
    "tts_config": {
        "provider": "elevenlabs",
        "voice_id": "ukiwGs47sHyibruHJ1vg",
        "model": "eleven_multilingual_v2",
        "language": "nl",
        "stability": 0.5,
        "similarity_boost": 0.75,
        "use_speaker_boost": True,
        "speed": 1.1,
        "style": 0.2,
    },
}
# The members of the other branches of the SDK's unions.
ELEVENLABS_STT = {
    "provider": "elevenlabs",
    "model": "scribe_v2_realtime",
    "language": "en",
    "tag_audio_events": True,
    "include_timestamps": True,
    "sample_rate": 8000,
}
MISTRAL_STT = {"provider": "mistral", "model": "voxtral-mini-latest", "language": "de"}
INWORLD_TTS = {"provider": "inworld", "voice_id": "Ashley", "language": "en", "speed": 0.9}
REALTIME_LLM = {"provider": "xai_realtime", "model": "grok-voice-think-fast-2.0", "voice": "eve"}


def shown(sent):
    """What the service answers for sent fields: secrets replaced by whether they are set."""
    answer = {key: value for key, value in sent.items() if key != "webhook_secret"}
    if "llm_config" in sent:
        tools = []
        for tool in sent["llm_config"].get("tools", ()):
            server = {"url": tool["server"]["url"], "secret_set": "secret" in tool["server"]}
            tools.append({**tool, "server": server})
        answer["llm_config"] = {**sent["llm_config"], "tools": tools}
    return answer


def assert_holds(answer, sent):
    """Every member sent comes back as sent (secrets as flags); the rest are defaults."""
    for key, value in shown(sent).items():
        if isinstance(value, dict):
            assert {member: answer[key][member] for member in value} == value, key
        else:
            assert answer[key] == value, key


def test_a_full_configuration_of_every_sdk_typed_field_is_created_and_read_back(server, sdk):
    created = sdk.create(FULL)

    assert_holds(created, FULL)
    assert created["webhook_secret_set"] is True
    assert created["llm_config"]["tools"][0]["server"]["secret_set"] is True
    assert sdk.get(created["id"]) == created
    text = json.dumps(sdk.list())
    assert WEBHOOK_SECRET not in text and TOOL_SECRET not in text
    [entry] = received(server, method="POST")
    assert entry["body"]["webhook_secret"] == "[redacted]"
    assert entry["body"]["llm_config"]["tools"][0]["server"]["secret"] == "[redacted]"


@pytest.mark.parametrize(
    "configs",
    [
        pytest.param({"stt_config": ELEVENLABS_STT}, id="elevenlabs stt"),
        pytest.param({"stt_config": MISTRAL_STT, "tts_config": INWORLD_TTS}, id="mistral, inworld"),
        pytest.param({"llm_config": REALTIME_LLM}, id="xai realtime with a voice"),
    ],
)
def test_the_other_branches_of_the_sdks_provider_unions_are_taken(sdk, configs):
    created = sdk.create({"name": "Branches"})

    updated = sdk.update(created["id"], configs)

    for name, config in configs.items():
        assert {member: updated[name][member] for member in config} == config
    assert sdk.get(created["id"]) == updated
    again = sdk.create({"name": "Branches, created", **configs})
    assert all(again[name] == updated[name] for name in configs)


def test_switching_a_stored_configs_provider_says_which_fields_to_clear(sdk):
    # update() merges into the stored config (a JSON merge patch), so the gladia members stay
    # and are refused with elevenlabs; the message names each one.
    created = sdk.create({"name": "Switching", "stt_config": FULL["stt_config"]})

    with pytest.raises(ApiRequestError) as refused:
        sdk.update(created["id"], {"stt_config": ELEVENLABS_STT})

    assert refused.value.param == "stt_config.languages"
    assert str(refused.value).startswith(
        "stt_config.languages is only for the gladia provider, not elevenlabs; set it to null "
        "to use elevenlabs."
    )


def test_every_update_param_the_sdk_types_as_nullable_takes_null(sdk):
    created = sdk.create(FULL)
    nulls = dict.fromkeys(
        [
            "business_name",
            "notification_email",
            "first_message",
            "max_duration_seconds",
            "voicemail_detection",
            "voicemail_message",
            "webhook_url",
            "webhook_secret",
            "webhook_events",
        ]
    )

    updated = sdk.update(created["id"], nulls)

    assert updated["max_duration_seconds"] == 600 and updated["voicemail_detection"] is False
    assert updated["webhook_events"] == [] and updated["webhook_secret_set"] is False
    for name in ("business_name", "notification_email", "first_message", "webhook_url"):
        assert updated[name] is None
    assert updated["gdpr_mode"] is True and updated["silence_timeout_seconds"] == 8


def test_an_analysis_plan_naming_a_template_is_read_back_as_the_sdk_types_it(sdk):
    created = sdk.create({"name": "Analysed"})
    plan = {"structured_data_plan": {"enabled": True, "template_id": "tmpl_appointments"}}

    updated = sdk.update(created["id"], {"analysis_plan": plan})

    read = updated["analysis_plan"]["structured_data_plan"]
    assert (read["enabled"], read["template_id"]) == (True, "tmpl_appointments")


# --- the status each error becomes, and the retries ------------------------------------------


def test_an_unknown_id_is_a_not_found_error(sdk):
    with pytest.raises(NotFoundError) as missing:
        sdk.get(str(uuid.uuid4()))
    assert str(missing.value) == "Agent not found." and missing.value.status == 404


def test_a_wrong_key_is_an_authentication_error_and_no_key_sends_nothing(server, sdk):
    with pytest.raises(AuthenticationError) as refused:
        SdkClient("fl_test_wrong", f"{server.url}/api/v1").list()
    assert str(refused.value) == "A valid API key is required: send Authorization: Bearer <key>."
    with pytest.raises(AuthenticationError):
        SdkClient("", f"{server.url}/api/v1")


def test_a_402_is_an_insufficient_credits_error(server, sdk):
    double_route(
        server,
        "POST",
        "/faults",
        {"method": "GET", "path": "/api/v1/assistants", "status": 402, "error": "No credits."},
    )
    with pytest.raises(InsufficientCreditsError) as refused:
        sdk.list()
    assert str(refused.value) == "No credits." and refused.value.code is None


def test_a_5xx_is_retried_after_1_then_2_seconds_until_it_succeeds(server, sdk):
    double_route(
        server,
        "POST",
        "/faults",
        {"method": "GET", "path": "/api/v1/assistants", "status": 503, "times": 2},
    )

    assert sdk.list() == []
    assert sdk.waits == [1.0, 2.0]
    assert [entry["status"] for entry in received(server, method="GET")] == [503, 503, 200]


def test_a_5xx_on_every_attempt_is_an_api_request_error_carrying_type(server, sdk):
    double_route(
        server,
        "POST",
        "/faults",
        {"method": "DELETE", "path": "/api/v1/assistants/{id}", "status": 500, "times": 3},
    )
    with pytest.raises(ApiRequestError) as failed:
        sdk.delete(str(uuid.uuid4()))
    assert (failed.value.status, failed.value.code) == (500, "injected_fault")
    assert len(received(server, method="DELETE")) == 3


def test_a_429_is_retried_ignoring_retry_after_and_then_a_rate_limit_error(server, sdk):
    double_route(
        server,
        "POST",
        "/faults",
        {
            "method": "GET",
            "path": "/api/v1/assistants",
            "status": 429,
            "times": 3,
            "retry_after": 30,
        },
    )
    with pytest.raises(RateLimitError) as limited:
        sdk.list()
    assert limited.value.retry_after == 30 and sdk.waits == [1.0, 2.0]


def test_a_retried_create_whose_first_answer_was_lost_makes_a_duplicate(server, sdk):
    # The SDK retries POST too, and sends no Idempotency-Key: a create that was committed but
    # whose answer was lost is made a second time. after_commit shows it.
    double_route(
        server,
        "POST",
        "/faults",
        {"method": "POST", "path": "/api/v1/assistants", "status": 502, "after_commit": True},
    )

    created = sdk.create({"name": "Once, the caller thinks"})

    names = [assistant["name"] for assistant in sdk.list()]
    assert names == ["Once, the caller thinks", "Once, the caller thinks"]
    assert created["id"] in [assistant["id"] for assistant in sdk.list()]
    assert [entry["status"] for entry in received(server, method="POST")] == [502, 201]


def test_the_rate_limits_429_is_a_rate_limit_error_with_retry_after(tmp_path):
    with LiveServer(
        tmp_path / "agents.db",
        AGENTS_URL_PREFIX="/api/v1",
        AGENTS_API_KEYS=API_KEY,
        AGENTS_RATE_LIMIT="2/hour",
    ) as limited_server:
        sdk = SdkClient(API_KEY, f"{limited_server.url}/api/v1", max_retries=0)
        sdk.list()
        sdk.list()
        with pytest.raises(RateLimitError) as limited:
            sdk.list()
    assert 1 <= limited.value.retry_after <= 3600
    assert str(limited.value).startswith("Too many requests: the limit is 2 an hour per API key")


def test_without_retries_a_lost_create_answer_is_an_error_though_the_assistant_exists(server, sdk):
    double_route(
        server,
        "POST",
        "/faults",
        {"method": "POST", "path": "/api/v1/assistants", "status": 502, "after_commit": True},
    )
    once = SdkClient(API_KEY, f"{server.url}/api/v1", max_retries=0)

    with pytest.raises(ApiRequestError) as lost:
        once.create({"name": "Committed"})

    assert type(lost.value) is ApiRequestError and lost.value.status == 502
    assert [assistant["name"] for assistant in sdk.list()] == ["Committed"]
