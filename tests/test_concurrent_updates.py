"""Updates validate outside the write lock, yet none is ever lost to another writer."""

import json
from concurrent.futures import ThreadPoolExecutor

import requests

import models
from tests.conftest import VALID_AGENT

# Each editor owns one field and writes it over and over; the others must never undo it.
EDITORS = {
    "name": lambda round_number: f"Name {round_number}",
    "first_message": lambda round_number: f"Hello {round_number}",
    "voicemail_message": lambda round_number: f"Call back {round_number}",
    "max_duration_seconds": lambda round_number: 100 + round_number,
}
ROUNDS = 15


def test_concurrent_patches_of_different_fields_all_survive(live_server):
    agent_id = requests.post(f"{live_server.url}/agents", json=VALID_AGENT, timeout=5).json()[
        "agent"
    ]["id"]

    def edit(field):
        session = requests.Session()
        for round_number in range(ROUNDS):
            value = EDITORS[field](round_number)
            response = session.patch(
                f"{live_server.url}/agents/{agent_id}", json={field: value}, timeout=10
            )
            assert response.status_code == 200, response.text
            assert response.json()["agent"][field] == value

    with ThreadPoolExecutor(len(EDITORS)) as pool:
        list(pool.map(edit, EDITORS))

    agent = requests.get(f"{live_server.url}/agents/{agent_id}", timeout=5).json()["agent"]
    assert {field: agent[field] for field in EDITORS} == {
        field: value(ROUNDS - 1) for field, value in EDITORS.items()
    }


def test_an_update_whose_agent_changed_meanwhile_is_revised_again_from_the_newer_agent(
    app, client, create_agent
):
    agent = create_agent()
    seen = []

    def revise(current):
        seen.append(current["name"])
        if len(seen) <= models.OPTIMISTIC_ATTEMPTS:
            # Another writer gets in between this revision and its write, every time it can.
            models.update_agent(
                agent["id"], lambda fields: {**fields, "name": f"Other {len(seen)}"}
            )
        return {**current, "first_message": "Mine"}

    with app.extensions["store"].activated(), models.db.connection_context():
        updated = models.update_agent(agent["id"], revise)

    # Three optimistic attempts lost the race; the fourth ran under the write lock.
    assert seen == [agent["name"], "Other 1", "Other 2", "Other 3"]
    stored = client.get(f"/agents/{agent['id']}").get_json()["agent"]
    assert stored == json.loads(updated.document)
    assert (stored["name"], stored["first_message"]) == ("Other 3", "Mine")
