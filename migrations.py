"""The database schema, version by version, and the step that takes a file from each to the next.

Every step is kept as the SQL it ran when its release shipped, not derived from the models, so
that changing a model can never change what an old file is upgraded from; a step that rewrites
stored data is a function kept the same way. The file's version is SQLite's `user_version`.
"""

import hashlib
import json

from storage import DatabaseUnavailable

# Release 1.0.0: agents and idempotency records.
SCHEMA_1 = (
    'CREATE TABLE IF NOT EXISTS "agent" ("namespace" TEXT NOT NULL, "id" TEXT NOT NULL, '
    '"created_at" TEXT NOT NULL, "updated_at" TEXT NOT NULL, "is_active" INTEGER NOT NULL, '
    '"search_text" TEXT NOT NULL, "webhook_secret" TEXT, "document" TEXT NOT NULL, '
    '"etag" TEXT NOT NULL, PRIMARY KEY ("namespace", "id"))',
    'CREATE TABLE IF NOT EXISTS "idempotency_record" ("namespace" TEXT NOT NULL, '
    '"key" TEXT NOT NULL, "fingerprint" TEXT NOT NULL, "agent_id" TEXT NOT NULL, '
    '"document" TEXT NOT NULL, "etag" TEXT NOT NULL, "status" INTEGER NOT NULL, '
    '"created" REAL NOT NULL, PRIMARY KEY ("namespace", "key"))',
    'CREATE INDEX IF NOT EXISTS "agent_namespace_created_at_id" '
    'ON "agent" ("namespace", "created_at", "id")',
    'CREATE INDEX IF NOT EXISTS "agent_namespace_is_active_created_at_id" '
    'ON "agent" ("namespace", "is_active", "created_at", "id")',
    'CREATE INDEX IF NOT EXISTS "idempotency_record_created" ON "idempotency_record" ("created")',
)

# ETags are stored without the quotes the HTTP header puts around them.
UNQUOTED_ETAGS = tuple(
    f"UPDATE {table} SET etag = substr(etag, 2, length(etag) - 2) WHERE etag GLOB '\"*\"'"
    for table in ("agent", "idempotency_record")
)

# The tables of test mode: clock, id seeds, journal, faults, snapshots, fixture files.
TEST_DOUBLE_TABLES = (
    'CREATE TABLE IF NOT EXISTS "frozen_clock" ("namespace" TEXT NOT NULL PRIMARY KEY, '
    '"now" TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "id_sequence" ("namespace" TEXT NOT NULL PRIMARY KEY, '
    '"seed" INTEGER NOT NULL, "counter" INTEGER NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "journal_entry" ("id" INTEGER NOT NULL PRIMARY KEY, '
    '"namespace" TEXT NOT NULL, "method" TEXT NOT NULL, "path" TEXT NOT NULL, '
    '"query" TEXT NOT NULL, "headers" TEXT NOT NULL, "body" TEXT, "status" INTEGER NOT NULL, '
    '"received_at" TEXT NOT NULL)',
    'CREATE INDEX IF NOT EXISTS "journal_entry_namespace" ON "journal_entry" ("namespace")',
    'CREATE TABLE IF NOT EXISTS "fault" ("id" INTEGER NOT NULL PRIMARY KEY, '
    '"namespace" TEXT NOT NULL, "method" TEXT NOT NULL, "path" TEXT NOT NULL, '
    '"status" INTEGER NOT NULL, "error" TEXT, "code" TEXT NOT NULL, "delay_ms" INTEGER NOT NULL, '
    '"remaining" INTEGER NOT NULL, "retry_after" INTEGER, "after_commit" INTEGER NOT NULL)',
    'CREATE INDEX IF NOT EXISTS "fault_namespace_method" ON "fault" ("namespace", "method")',
    'CREATE TABLE IF NOT EXISTS "snapshot" ("namespace" TEXT NOT NULL, "name" TEXT NOT NULL, '
    '"state" TEXT NOT NULL, "created_at" TEXT NOT NULL, PRIMARY KEY ("namespace", "name"))',
    'CREATE TABLE IF NOT EXISTS "fixture_file" ("namespace" TEXT NOT NULL, '
    '"digest" TEXT NOT NULL, "loaded_at" TEXT NOT NULL, PRIMARY KEY ("namespace", "digest"))',
)

# Test mode's simulated calls and the journal of their webhook deliveries.
SIMULATED_CALL_TABLES = (
    'CREATE TABLE IF NOT EXISTS "simulated_call" ("sequence" INTEGER NOT NULL PRIMARY KEY, '
    '"namespace" TEXT NOT NULL, "call_id" TEXT NOT NULL, "document" TEXT NOT NULL)',
    'CREATE UNIQUE INDEX IF NOT EXISTS "simulated_call_namespace_call_id" '
    'ON "simulated_call" ("namespace", "call_id")',
    'CREATE TABLE IF NOT EXISTS "delivery" ("sequence" INTEGER NOT NULL PRIMARY KEY, '
    '"namespace" TEXT NOT NULL, "call_id" TEXT NOT NULL, "event" TEXT NOT NULL, '
    '"document" TEXT NOT NULL)',
    'CREATE INDEX IF NOT EXISTS "delivery_namespace_call_id" '
    'ON "delivery" ("namespace", "call_id")',
)

# The fields the platform added, as this release renders them: in each object, the new fields
# with their defaults follow the field named first, so every stored agent shows every field.
PLATFORM_FIELDS = {
    None: ("autonomous_silence_handling", {"silence_timeout_seconds": None, "gdpr_mode": False}),
    "stt_config": (
        "keyterms",
        dict.fromkeys(
            (
                "tag_audio_events",
                "include_timestamps",
                "sample_rate",
                "languages",
                "code_switching",
                "region",
                "endpointing",
                "custom_vocabulary",
                "translation_enabled",
                "translation_target_languages",
            )
        ),
    ),
    "llm_config": ("tools", {"voice": None}),
    "tts_config": ("use_speaker_boost", {"style": None}),
}


def _with_fields(document, additions):
    if not isinstance(document, dict):
        return document
    after, fields = additions
    result = {}
    for key, value in document.items():
        result[key] = value
        if key == after:
            result.update({name: value for name, value in fields.items() if name not in document})
    return result


def _with_platform_fields(text):
    """A stored agent's JSON, and its ETag, with the platform's new fields at their defaults."""
    agent = _with_fields(json.loads(text), PLATFORM_FIELDS[None])
    for name in ("stt_config", "llm_config", "tts_config"):
        agent[name] = _with_fields(agent.get(name), PLATFORM_FIELDS[name])
    for tool in (agent.get("llm_config") or {}).get("tools", ()):
        if isinstance(tool.get("server"), dict):
            tool["server"].setdefault("secret_set", False)
    plan = (agent.get("analysis_plan") or {}).get("structured_data_plan")
    if isinstance(plan, dict):
        plan.setdefault("template_id", None)
    document = json.dumps(agent, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return document, hashlib.blake2b(document.encode(), digest_size=16).hexdigest()


def add_platform_fields(database):
    """Render every stored agent, and every agent in a test-mode snapshot, with the platform's
    new fields at their defaults.

    Tool servers gain `secret_set: false` (no secret was stored before), structured-data plans
    `template_id: null`. The ETag changes with the representation.
    """
    rows = database.execute_sql('SELECT "namespace", "id", "document" FROM "agent"').fetchall()
    for namespace, agent_id, text in rows:
        database.execute_sql(
            'UPDATE "agent" SET "document" = ?, "etag" = ? WHERE "namespace" = ? AND "id" = ?',
            (*_with_platform_fields(text), namespace, agent_id),
        )
    snapshots = database.execute_sql('SELECT "namespace", "name", "state" FROM "snapshot"')
    for namespace, name, text in snapshots.fetchall():
        state = json.loads(text)
        for row in state.get("agent", ()):
            row["document"], row["etag"] = _with_platform_fields(row["document"])
        database.execute_sql(
            'UPDATE "snapshot" SET "state" = ? WHERE "namespace" = ? AND "name" = ?',
            (json.dumps(state, ensure_ascii=False, separators=(",", ":")), namespace, name),
        )


# Release 1.2.0: tool servers' secrets beside the agent's, the new fields in every stored agent,
# and the rate-limit counts.
PLATFORM_PARITY = (
    'ALTER TABLE "agent" ADD COLUMN "tool_secrets" TEXT',
    add_platform_fields,
    'CREATE TABLE IF NOT EXISTS "rate_limit_window" ("client" TEXT NOT NULL PRIMARY KEY, '
    '"window_start" INTEGER NOT NULL, "count" INTEGER NOT NULL)',
)

# Release 1.3.0: `q` answered from a trigram index of the search text (SQLite's FTS5), so a
# search reads the agents that hold the text rather than every agent. The index is keyed on a
# rowid, and VACUUM may renumber the implicit rowid of a table without an INTEGER PRIMARY KEY,
# so the agent table is rebuilt with one ("sequence", in creation order); its key (namespace,
# id) becomes a unique index. The triggers keep the index in step with every write.
# SQLite's form; the PostgreSQL engine's is its own.
SEARCH_INDEX_TABLES = (
    # The search text is stored case-folded, so the index compares it as it is.
    'CREATE VIRTUAL TABLE "agent_search" USING fts5(search_text, '
    "content='agent', content_rowid='sequence', tokenize='trigram case_sensitive 1')",
    'CREATE TRIGGER "agent_search_insert" AFTER INSERT ON "agent" BEGIN '
    'INSERT INTO "agent_search" ("rowid", "search_text") '
    'VALUES (new."sequence", new."search_text"); END',
    'CREATE TRIGGER "agent_search_delete" AFTER DELETE ON "agent" BEGIN '
    'INSERT INTO "agent_search" ("agent_search", "rowid", "search_text") '
    """VALUES ('delete', old."sequence", old."search_text"); END""",
    'CREATE TRIGGER "agent_search_update" AFTER UPDATE OF "search_text" ON "agent" '
    'WHEN old."search_text" IS NOT new."search_text" BEGIN '
    'INSERT INTO "agent_search" ("agent_search", "rowid", "search_text") '
    """VALUES ('delete', old."sequence", old."search_text"); """
    'INSERT INTO "agent_search" ("rowid", "search_text") '
    'VALUES (new."sequence", new."search_text"); END',
)
SEARCH_INDEX = (
    'CREATE TABLE "agent_with_sequence" ("sequence" INTEGER NOT NULL PRIMARY KEY, '
    '"namespace" TEXT NOT NULL, "id" TEXT NOT NULL, "created_at" TEXT NOT NULL, '
    '"updated_at" TEXT NOT NULL, "is_active" INTEGER NOT NULL, "search_text" TEXT NOT NULL, '
    '"webhook_secret" TEXT, "document" TEXT NOT NULL, "etag" TEXT NOT NULL, '
    '"tool_secrets" TEXT)',
    'INSERT INTO "agent_with_sequence" ("namespace", "id", "created_at", "updated_at", '
    '"is_active", "search_text", "webhook_secret", "document", "etag", "tool_secrets") '
    'SELECT "namespace", "id", "created_at", "updated_at", "is_active", "search_text", '
    '"webhook_secret", "document", "etag", "tool_secrets" FROM "agent" '
    'ORDER BY "created_at", "id"',
    'DROP TABLE "agent"',
    'ALTER TABLE "agent_with_sequence" RENAME TO "agent"',
    'CREATE UNIQUE INDEX "agent_namespace_id" ON "agent" ("namespace", "id")',
    # The list's indexes carry the search text, so a search reads the newest agents' from the
    # index alone rather than a page of the table for each.
    'CREATE INDEX "agent_namespace_created_at_id_search_text" '
    'ON "agent" ("namespace", "created_at", "id", "search_text")',
    'CREATE INDEX "agent_namespace_is_active_created_at_id_search_text" '
    'ON "agent" ("namespace", "is_active", "created_at", "id", "search_text")',
    *SEARCH_INDEX_TABLES,
    """INSERT INTO "agent_search" ("agent_search") VALUES ('rebuild')""",
)

# STEPS[n - 1] takes a file from schema version n - 1 to n. Append only: a release that changes
# what is stored adds a step, and the files of every earlier release still open.
STEPS = (
    SCHEMA_1,
    UNQUOTED_ETAGS,
    TEST_DOUBLE_TABLES,
    SIMULATED_CALL_TABLES,
    PLATFORM_PARITY,
    SEARCH_INDEX,
)


class SchemaTooNew(DatabaseUnavailable):
    """The database was written by a later release than this one."""


def schema_version(database):
    """The database's schema version (0 for a new, empty one)."""
    return database.execute_sql("PRAGMA user_version").fetchone()[0]


def latest_version():
    """The version this release brings every database to."""
    return len(STEPS)


def migrate(database):
    """Bring an open database up to the latest version, one committed step per version."""
    version = schema_version(database)
    latest = latest_version()
    if version > latest:
        raise SchemaTooNew(
            f"The database has schema version {version}; this release knows up to "
            f"{latest}. Run the release that wrote it, or a later one."
        )
    for number in range(version + 1, latest + 1):
        with database.atomic("IMMEDIATE"):
            for statement in STEPS[number - 1]:
                if callable(statement):
                    statement(database)
                else:
                    database.execute_sql(statement)
            database.execute_sql(f"PRAGMA user_version = {number}")
