"""Realistic agents for the benchmark, and the two ways of storing them: the API and models.py."""

import json
import random
from concurrent.futures import ThreadPoolExecutor

import requests

import models
from schemas import AGENT
from storage import open_engine
from store import Store

# Business, domain, language, and the departments its agents transfer callers to: each
# business's agents share a tool, as they do in production.
BUSINESSES = (
    ("Acme Telecom", "acme-telecom.example", "nl", ("billing", "support", "sales")),
    ("Noordzee Verzekeringen", "noordzee.example", "nl", ("claims", "policies")),
    ("Brightside Dental", "brightside.example", "en", ("front desk", "billing")),
    ("Hanse Logistik", "hanse-logistik.example", "de", ("dispatch", "customs", "billing")),
    ("Lakeview Property Management", "lakeview.example", "en-US", ("maintenance", "leasing")),
)
ROLES = ("Support", "Sales", "Scheduling", "Billing", "After-hours")
PROMPT_LENGTH = 600


def system_prompt(business, role):
    """A 600-character system prompt of the kind a real phone agent carries."""
    text = (
        f"You are the {role.lower()} line of {business}. Greet the caller warmly, ask for their "
        "name and customer number, and confirm both before you look anything up. Keep answers "
        "short: callers are on the phone, often driving. Never read out more than three options "
        "at once. If the caller asks for a human, or is upset twice in a row, transfer the call "
        "with the transfer tool and say that you are doing so. Do not give legal, medical or "
        "financial advice. Office hours are Monday to Friday, 08:00 to 18:00; outside them, "
        "offer a call-back and record the preferred time. End every call by summarising what "
        "was agreed and asking whether anything else is needed."
    )
    return (text * 2)[:PROMPT_LENGTH]


def agent_name(index):
    business = BUSINESSES[index % len(BUSINESSES)][0]
    return f"{business} {ROLES[index // len(BUSINESSES) % len(ROLES)]} {index}"


def agent_body(index):
    """The POST body of agent number `index`: every config filled in, as production agents are."""
    business, domain, language, departments = BUSINESSES[index % len(BUSINESSES)]
    role = ROLES[index // len(BUSINESSES) % len(ROLES)]
    return {
        "name": agent_name(index),
        "business_name": business,
        "notification_email": f"voice-ops+{index}@{domain}",
        "first_message": f"Thank you for calling {business}. How can I help you today?",
        "is_active": index % 7 != 0,
        "voicemail_detection": True,
        "voicemail_message": f"This is {business}. Please call us back during office hours.",
        "max_duration_seconds": 900,
        "autonomous_silence_handling": True,
        "webhook_url": f"https://hooks.{domain}/voice/{index}",
        "webhook_secret": f"whsec-{index:08d}-bench",
        "webhook_events": ["status-update", "end-of-call-report"],
        "stt_config": {
            "provider": "deepgram",
            "model": "nova-3-general",
            "language": language,
            "keyterms": [business, role, "customer number", "invoice"],
        },
        "llm_config": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "temperature": 0.6,
            "messages": [{"role": "system", "content": system_prompt(business, role)}],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "transfer_call",
                        "description": "Transfer the caller to a human colleague.",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "department": {"type": "string", "enum": list(departments)},
                                "reason": {"type": "string", "maxLength": 500},
                            },
                            "required": ["department"],
                        },
                    },
                    "server": {"url": f"https://tools.{domain}/transfer"},
                }
            ],
        },
        "tts_config": {
            "provider": "elevenlabs",
            "voice_id": "21m00Tcm4TlvDq8ikWAM",
            "language": language,
            "model": "eleven_flash_v2_5",
            "speed": 1.0,
            "stability": 0.5,
            "similarity_boost": 0.75,
            "use_speaker_boost": True,
        },
    }


def patch_body(index):
    """A merge patch that really changes the agent, so every PATCH is a write."""
    rng = random.Random(index)
    return {
        "name": f"Renamed agent {index}",
        "first_message": f"Good day, you are speaking with assistant {rng.randrange(10**6)}.",
        "llm_config": {"temperature": round(rng.uniform(0, 1.5), 2)},
    }


def seed_through_api(url, count, threads=4):
    """POST `count` agents to the service at `url`; returns their ids."""
    session = requests.Session()

    def create(index):
        response = session.post(f"{url}/agents", json=agent_body(index), timeout=30)
        response.raise_for_status()
        return response.json()["agent"]["id"]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(create, range(count)))


def seed_directly(database_url, count, templates=50):
    """Store `count` agents straight through models.create_agent, in one transaction; returns ids.

    Each stored row is exactly what a POST stores; only the validation is done once per template
    rather than once per agent, so a hundred thousand agents take seconds, not minutes.
    """
    store = Store(open_engine(database_url))
    store.prepare()
    loaded = [AGENT.load(agent_body(index)) for index in range(templates)]
    ids = []
    with store.activated(), models.db.connection_context(), models.write_transaction():
        for index in range(count):
            fields = {**loaded[index % templates], "name": agent_name(index)}
            agent, _ = models.create_agent(fields)
            ids.append(agent.id)
    store.engine.close()
    return ids


def write_lines(path, lines):
    """One item a line, the form the wrk scripts read."""
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def write_bodies(path, bodies):
    """JSON bodies, one a line."""
    return write_lines(path, (json.dumps(body, separators=(",", ":")) for body in bodies))
