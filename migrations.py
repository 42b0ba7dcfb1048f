"""The database schema, version by version, and the step that takes a file from each to the next.

Every step is kept as the SQL it ran when its release shipped, not derived from the models, so
that changing a model can never change what an old file is upgraded from; a step that rewrites
stored data is a function kept the same way. Each step has a form for each engine: the SQLite
one as it shipped, and the PostgreSQL one (text keys in byte order, `COLLATE "C"`, as SQLite
compares them; booleans, identities and 64-bit integers as PostgreSQL has them). The version is
SQLite's `user_version`, or the one row of PostgreSQL's `schema_version` table.
"""

import hashlib
import json
from typing import NamedTuple

from peewee import DatabaseError, PostgresqlDatabase

from storage import DatabaseUnavailable


class Step(NamedTuple):
    """What takes a database from one version to the next, on each engine."""

    sqlite: tuple
    postgresql: tuple


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


class ExtensionMissing(DatabaseUnavailable):
    """PostgreSQL's pg_trgm is not installed, and this role may not install it."""


def add_trigram_index(database):
    """Index the search text by trigrams: `q` looks for a substring anywhere in a name, which
    only such an index finds without reading every agent.

    pg_trgm is a trusted extension: any role that may create objects in the database may
    install it. The operator class is named by the schema pg_trgm was installed in, which need
    not be on the search path.
    """
    try:
        with database.atomic():  # a savepoint: a refusal leaves the step's transaction usable
            database.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise ExtensionMissing(
            f"the pg_trgm extension is not installed and cannot be installed here ({reason}); "
            "ask the database's owner to run CREATE EXTENSION pg_trgm; in it"
        ) from None
    row = database.execute_sql(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    ).fetchone()
    database.execute_sql(
        'CREATE INDEX IF NOT EXISTS "agent_search_text_trigrams" ON "agent" '
        f'USING gin ("search_text" {row[0]}.gin_trgm_ops)'
    )


SCHEMA_1_POSTGRESQL = (
    'CREATE TABLE IF NOT EXISTS "agent" ("namespace" TEXT COLLATE "C" NOT NULL, '
    '"id" TEXT COLLATE "C" NOT NULL, "created_at" TEXT COLLATE "C" NOT NULL, '
    '"updated_at" TEXT NOT NULL, "is_active" BOOLEAN NOT NULL, "search_text" TEXT NOT NULL, '
    '"webhook_secret" TEXT, "document" TEXT NOT NULL, "etag" TEXT NOT NULL, '
    'PRIMARY KEY ("namespace", "id"))',
    'CREATE TABLE IF NOT EXISTS "idempotency_record" ("namespace" TEXT COLLATE "C" NOT NULL, '
    '"key" TEXT COLLATE "C" NOT NULL, "fingerprint" TEXT NOT NULL, "agent_id" TEXT NOT NULL, '
    '"document" TEXT NOT NULL, "etag" TEXT NOT NULL, "status" INTEGER NOT NULL, '
    '"created" DOUBLE PRECISION NOT NULL, PRIMARY KEY ("namespace", "key"))',
    *SCHEMA_1[2:],
    add_trigram_index,
)


# ETags are stored without the quotes the HTTP header puts around them.
UNQUOTED_ETAGS = tuple(
    f"UPDATE {table} SET etag = substr(etag, 2, length(etag) - 2) WHERE etag GLOB '\"*\"'"
    for table in ("agent", "idempotency_record")
)
# (psycopg reads a % in a statement as a placeholder, so no LIKE pattern here.)
UNQUOTED_ETAGS_POSTGRESQL = tuple(
    f"UPDATE {table} SET etag = substr(etag, 2, length(etag) - 2) "
    "WHERE length(etag) >= 2 AND left(etag, 1) = '\"' AND right(etag, 1) = '\"'"
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

TEST_DOUBLE_TABLES_POSTGRESQL = (
    'CREATE TABLE IF NOT EXISTS "frozen_clock" ("namespace" TEXT COLLATE "C" PRIMARY KEY, '
    '"now" TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "id_sequence" ("namespace" TEXT COLLATE "C" PRIMARY KEY, '
    '"seed" BIGINT NOT NULL, "counter" BIGINT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "journal_entry" '
    '("id" BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, '
    '"namespace" TEXT COLLATE "C" NOT NULL, "method" TEXT NOT NULL, "path" TEXT NOT NULL, '
    '"query" TEXT NOT NULL, "headers" TEXT NOT NULL, "body" TEXT, "status" INTEGER NOT NULL, '
    '"received_at" TEXT COLLATE "C" NOT NULL)',
    TEST_DOUBLE_TABLES[3],
    'CREATE TABLE IF NOT EXISTS "fault" ("id" BIGINT GENERATED BY DEFAULT AS IDENTITY '
    'PRIMARY KEY, "namespace" TEXT COLLATE "C" NOT NULL, "method" TEXT NOT NULL, '
    '"path" TEXT NOT NULL, "status" INTEGER NOT NULL, "error" TEXT, "code" TEXT NOT NULL, '
    '"delay_ms" INTEGER NOT NULL, "remaining" INTEGER NOT NULL, "retry_after" INTEGER, '
    '"after_commit" BOOLEAN NOT NULL)',
    TEST_DOUBLE_TABLES[5],
    'CREATE TABLE IF NOT EXISTS "snapshot" ("namespace" TEXT COLLATE "C" NOT NULL, '
    '"name" TEXT COLLATE "C" NOT NULL, "state" TEXT NOT NULL, "created_at" TEXT NOT NULL, '
    'PRIMARY KEY ("namespace", "name"))',
    'CREATE TABLE IF NOT EXISTS "fixture_file" ("namespace" TEXT COLLATE "C" NOT NULL, '
    '"digest" TEXT COLLATE "C" NOT NULL, "loaded_at" TEXT NOT NULL, '
    'PRIMARY KEY ("namespace", "digest"))',
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

SIMULATED_CALL_TABLES_POSTGRESQL = (
    'CREATE TABLE IF NOT EXISTS "simulated_call" ("sequence" BIGINT GENERATED BY DEFAULT AS '
    'IDENTITY PRIMARY KEY, "namespace" TEXT COLLATE "C" NOT NULL, '
    '"call_id" TEXT COLLATE "C" NOT NULL, "document" TEXT NOT NULL)',
    SIMULATED_CALL_TABLES[1],
    'CREATE TABLE IF NOT EXISTS "delivery" ("sequence" BIGINT GENERATED BY DEFAULT AS '
    'IDENTITY PRIMARY KEY, "namespace" TEXT COLLATE "C" NOT NULL, '
    '"call_id" TEXT COLLATE "C" NOT NULL, "event" TEXT NOT NULL, "document" TEXT NOT NULL)',
    SIMULATED_CALL_TABLES[3],
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
PLATFORM_PARITY_POSTGRESQL = (
    *PLATFORM_PARITY[:2],
    'CREATE TABLE IF NOT EXISTS "rate_limit_window" ("client" TEXT COLLATE "C" PRIMARY KEY, '
    '"window_start" BIGINT NOT NULL, "count" INTEGER NOT NULL)',
)

# Release 1.3.0: `q` answered from a trigram index of the search text (SQLite's FTS5), so a
# search reads the agents that hold the text rather than every agent. The index is keyed on a
# rowid, and VACUUM may renumber the implicit rowid of a table without an INTEGER PRIMARY KEY,
# so the agent table is rebuilt with one ("sequence", in creation order); its key (namespace,
# id) becomes a unique index. The triggers keep the index in step with every write.
# SQLite's form: on PostgreSQL, pg_trgm's index (step 1) answers `q`, and its agents are only
# numbered (SEARCH_INDEX_POSTGRESQL).
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
# The number an import tells the agents it stored apart by (maintenance.py).
SEARCH_INDEX_POSTGRESQL = (
    'ALTER TABLE "agent" ADD COLUMN "sequence" BIGINT GENERATED BY DEFAULT AS IDENTITY',
    'CREATE UNIQUE INDEX "agent_sequence" ON "agent" ("sequence")',
)

# Release 1.3.0, a later step: a write no longer adds to the search index itself, which cost a
# write about half of SQLite's work for it. Its triggers note the agent in agent_search_pending,
# with the text the index holds for it (none for a new agent; INSERT OR IGNORE keeps the first
# note, so that text stays the one indexed), and models.index_pending_searches hands the index
# the noted agents in batches. Searches read the noted agents beside the index's (listing.py).
PENDING_SEARCHES = (
    'DROP TRIGGER "agent_search_insert"',
    'DROP TRIGGER "agent_search_delete"',
    'DROP TRIGGER "agent_search_update"',
    'CREATE TABLE "agent_search_pending" ("sequence" INTEGER NOT NULL PRIMARY KEY, '
    '"indexed_text" TEXT)',
    'CREATE TRIGGER "agent_search_insert" AFTER INSERT ON "agent" BEGIN '
    'INSERT OR IGNORE INTO "agent_search_pending" ("sequence", "indexed_text") '
    'VALUES (new."sequence", NULL); END',
    'CREATE TRIGGER "agent_search_delete" AFTER DELETE ON "agent" BEGIN '
    'INSERT OR IGNORE INTO "agent_search_pending" ("sequence", "indexed_text") '
    'VALUES (old."sequence", old."search_text"); END',
    'CREATE TRIGGER "agent_search_update" AFTER UPDATE OF "search_text" ON "agent" '
    'WHEN old."search_text" IS NOT new."search_text" BEGIN '
    'INSERT OR IGNORE INTO "agent_search_pending" ("sequence", "indexed_text") '
    'VALUES (old."sequence", old."search_text"); END',
)

# STEPS[n - 1] takes a file from schema version n - 1 to n. Append only: a release that changes
# what is stored adds a step, and the files of every earlier release still open.
STEPS = (
    Step(SCHEMA_1, SCHEMA_1_POSTGRESQL),
    Step(UNQUOTED_ETAGS, UNQUOTED_ETAGS_POSTGRESQL),
    Step(TEST_DOUBLE_TABLES, TEST_DOUBLE_TABLES_POSTGRESQL),
    Step(SIMULATED_CALL_TABLES, SIMULATED_CALL_TABLES_POSTGRESQL),
    Step(PLATFORM_PARITY, PLATFORM_PARITY_POSTGRESQL),
    Step(SEARCH_INDEX, SEARCH_INDEX_POSTGRESQL),
    # pg_trgm's index is kept by PostgreSQL as rows change: nothing waits there.
    Step(PENDING_SEARCHES, ()),
)
# PostgreSQL keeps the version in a table of one row.
POSTGRESQL_VERSION = 'SELECT "version" FROM "schema_version"'


class SchemaTooNew(DatabaseUnavailable):
    """The database was written by a later release than this one."""


def schema_version(database):
    """The database's schema version (0 for a new, empty one)."""
    if _on_postgresql(database):
        if not database.execute_sql("SELECT to_regclass('schema_version')").fetchone()[0]:
            return 0
        return database.execute_sql(POSTGRESQL_VERSION).fetchone()[0]
    return database.execute_sql("PRAGMA user_version").fetchone()[0]


def latest_version():
    """The version this release brings every database to."""
    return len(STEPS)


def migrate(database):
    """Bring an open database up to the latest version, one committed step per version.

    On PostgreSQL the engine holds an advisory lock meanwhile, as SQLite's holds its lock file,
    so hosts starting together migrate one after another.
    """
    postgresql = _on_postgresql(database)
    version = schema_version(database)
    latest = latest_version()
    if version > latest:
        raise SchemaTooNew(
            f"The database has schema version {version}; this release knows up to "
            f"{latest}. Run the release that wrote it, or a later one."
        )
    for number in range(version + 1, latest + 1):
        step = STEPS[number - 1]
        with database.atomic() if postgresql else database.atomic("IMMEDIATE"):
            for statement in step.postgresql if postgresql else step.sqlite:
                if callable(statement):
                    statement(database)
                else:
                    database.execute_sql(statement)
            if postgresql:
                _set_postgresql_version(database, number)
            else:
                database.execute_sql(f"PRAGMA user_version = {number}")


def _on_postgresql(database):
    return isinstance(database, PostgresqlDatabase)


def _set_postgresql_version(database, number):
    database.execute_sql('CREATE TABLE IF NOT EXISTS "schema_version" ("version" INTEGER NOT NULL)')
    database.execute_sql('DELETE FROM "schema_version"')
    database.execute_sql('INSERT INTO "schema_version" ("version") VALUES (?)', (number,))
