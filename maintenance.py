"""The operator's export and import of agents, through the models and so on every engine.

Both stream: an export writes one agent at a time as the rows are read, and an import reads,
checks and stores a batch at a time inside one transaction, so a million agents take no more
memory than a thousand. (Backup and check are each engine's own: SQLite's online backup and
integrity check.)
"""

import json
import re
from collections.abc import Iterator

from marshmallow import ValidationError

import migrations
from export_file import read_members, write_export
from listing import last_sequence
from models import (
    Agent,
    delete_namespace_agents,
    insert_agents,
    merge_search_index,
    stored_positions,
)
from schemas import EXPORT_FILE, EXPORT_FORMAT, load_export
from sentences import all_sentences, error_sentences
from store import utc_timestamp, write_transaction

EXPORT_VERSION = 1
# Agents checked and stored together: enough to make each statement count, few enough to hold.
IMPORT_BATCH = 1000
# The sentences an import that is refused keeps to show; the rest are counted.
SHOWN_SENTENCES = 20


class ImportRefused(Exception):
    """The file is not a valid export: the first `sentences`, of `count` in all, say why."""

    def __init__(self, sentences, count):
        super().__init__(sentences)
        self.sentences = sentences
        self.count = count


class AgentsAlreadyStored(Exception):
    """`count` agents of the file have ids stored agents already have; the first is `first_id`."""

    def __init__(self, count, first_id):
        super().__init__(count, first_id)
        self.count = count
        self.first_id = first_id


def export_agents(out, include_secrets=False):
    """Write every agent as responses show it, oldest first, in the export file's envelope, to
    the text file `out`; returns how many.

    With `include_secrets` each agent carries its webhook secret too, and each tool server its
    `secret` beside `secret_set`.
    """
    envelope = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utc_timestamp(),
        "schema_version": migrations.latest_version(),
    }
    select = (
        Agent.select(Agent.document, Agent.webhook_secret, Agent.tool_secrets)
        .where(Agent.namespace == "default")
        .order_by(Agent.created_at, Agent.id)
        .tuples()
        .iterator()
    )
    return write_export(out, envelope, (_exported(*row, include_secrets) for row in select))


def _exported(document, secret, tool_secrets, include_secrets):
    agent = json.loads(document)
    if include_secrets and secret is not None:
        agent["webhook_secret"] = secret
    if include_secrets and tool_secrets is not None:
        tools = agent["llm_config"]["tools"]
        for tool, tool_secret in zip(tools, json.loads(tool_secrets), strict=True):
            if tool_secret is not None:
                tool["server"]["secret"] = tool_secret
    return agent


def import_file(source, replace=False, allow_missing_secrets=False):
    """Store the agents of the export in the binary file `source` with their own ids and
    timestamps, each checked by the API's rules: all of them, or none; returns how many.

    Without `replace`, ids already stored raise AgentsAlreadyStored; with it, every stored agent
    and idempotency record goes first. A file that is not a valid export raises ImportRefused
    (and ValueError, UnicodeError or RecursionError for one that is not JSON to begin with).
    """
    with write_transaction():
        if replace:
            delete_namespace_agents()
        batches = _ImportBatches(allow_missing_secrets)
        envelope = {}
        for name, value in read_members(source):
            if name is None:  # not an object: the schema says what is wrong with it
                envelope = value
            elif name == "agents" and isinstance(value, Iterator):
                envelope[name] = []
                for agent in value:
                    batches.add(agent)
                batches.flush()
            else:
                envelope[name] = value
        batches.refuse(_sentences(lambda: EXPORT_FILE.load(envelope)), first=True)
        # Raising leaves the transaction: nothing of the file is kept.
        if batches.sentences:
            raise ImportRefused(batches.sentences[:SHOWN_SENTENCES], len(batches.sentences))
        if batches.taken:
            raise AgentsAlreadyStored(len(batches.taken), batches.taken[0])
        merge_search_index()
    return batches.stored


class _ImportBatches:
    """Checks the agents of a file a batch at a time and stores them while all is well."""

    def __init__(self, allow_missing_secrets):
        self.allow_missing_secrets = allow_missing_secrets
        self.batch = []
        self.first_index = 0  # the file's index of the batch's first agent
        self.stored = 0
        self.sentences = []
        self.taken = []
        # Agents this import stores are numbered after every agent stored before it.
        self.numbered_after = last_sequence()

    def add(self, agent):
        self.batch.append(agent)
        if len(self.batch) == IMPORT_BATCH:
            self.flush()

    def refuse(self, sentences, first=False):
        self.sentences = [*sentences, *self.sentences] if first else [*self.sentences, *sentences]

    def flush(self):
        batch, self.batch = self.batch, []
        offset, self.first_index = self.first_index, self.first_index + len(batch)
        if not batch:
            return
        document = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "agents": batch}
        loaded = []

        def load():
            loaded.extend(load_export(document, self.allow_missing_secrets))

        self.refuse(_renumbered(sentence, offset) for sentence in _sentences(load))
        if self.sentences or self.taken:
            return  # nothing more is stored; the rest is only checked
        earlier = stored_positions([agent["id"] for agent in loaded], self.numbered_after)
        for index, agent in enumerate(loaded):
            position = earlier.get(agent["id"])
            if position is None:
                continue
            if position < 0:
                self.taken.append(agent["id"])
            else:
                self.refuse(
                    [f"agents.{offset + index}.id must be unique; agents.{position} has it too."]
                )
        if not (self.sentences or self.taken):
            insert_agents(loaded)
            self.stored += len(loaded)


def _sentences(load):
    """The sentences of the ValidationError `load()` raises, or none."""
    try:
        load()
    except ValidationError as error:
        return all_sentences(error_sentences(error.messages, EXPORT_FILE))
    return []


def _renumbered(sentence, offset):
    """A batch's sentence with its agents' indexes made the file's."""
    return re.sub(r"\bagents\.(\d+)", lambda match: f"agents.{int(match[1]) + offset}", sentence)
