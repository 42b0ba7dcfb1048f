"""How a list of agents is read: newest first, filtered, after a keyset cursor, and searched.

A search (`q`) finds agents whose case-folded search text holds the text. On PostgreSQL the
plain `LIKE` is enough: pg_trgm's GIN index (migrations) answers it, and the server plans when
to use it. On SQLite an FTS5 trigram table (`agent_search`, migrations.SEARCH_INDEX) finds the
agents that hold a text of at least TRIGRAM characters; which plan is cheapest depends on how
many agents hold the text, so a search of at least that length:

1. reads the newest SCAN_FIRST agents' search text from the list index (only the matches' rows
   are read): a text one in ten agents holds fills its page among them;
2. otherwise, if few enough agents hold it, finds them in the trigram index (with the agents
   written since it was last given them) and sorts them;
3. if many do, goes on scanning newest first until the page is full.

Whatever found the rows, the `LIKE` decides which are kept, so every plan answers the same, and
an agent the index still holds by an older text is found by its text now or not at all.
"""

import math

from store import current_store, db

# {document} is the column itself, or the engine's expression that reads it as bytes.
SELECT_DOCUMENTS = 'SELECT {document} FROM "agent" WHERE "namespace" = ?'
NEWEST_FIRST = ' ORDER BY "created_at" DESC, "id" DESC'
HOLDS = """ AND "agent"."search_text" LIKE ? ESCAPE '\\'"""
# The agents the trigram index finds, and those whose search text it has not been given yet
# (models.index_pending_searches). CROSS JOIN makes SQLite start from them rather than from the
# newest agent.
SEARCH_DOCUMENTS = (
    'SELECT {document} FROM (SELECT "rowid" AS "sequence" FROM "agent_search" '
    'WHERE "agent_search" MATCH ? UNION SELECT "sequence" FROM "agent_search_pending") '
    'AS "found" CROSS JOIN "agent" ON "agent"."sequence" = "found"."sequence" '
    'WHERE "namespace" = ?'
)
# Where an agent stands in the list, read from the list index alone.
POSITIONS = 'SELECT "created_at", "id" FROM "agent" WHERE "namespace" = ?'
COUNT_MATCHES = (
    'SELECT count(*) FROM (SELECT 1 FROM "agent_search" WHERE "agent_search" MATCH ? LIMIT ?)'
)
LAST_SEQUENCE = 'SELECT max("sequence") FROM "agent"'
# The shortest text the trigram index can find.
TRIGRAM = 3
# How many of the newest agents a search reads before it asks the index: a text one in ten of
# them holds fills a page of 100 here, in about a millisecond at any count.
SCAN_FIRST = 1000


def documents(limit, after, is_active, query, namespace, document):
    """The `document` column (SQL) of the agents of one page, newest first; all when `limit`
    is None. `after` is the (created_at, id) of the last agent of the previous page."""
    folded = query.casefold() if query else None
    # The index needs three characters, and no NUL: it would end the LIKE pattern.
    indexed = (
        folded
        and current_store().engine.has_trigram_table
        and len(folded) >= TRIGRAM
        and "\0" not in folded
    )
    if indexed and limit is not None:
        page = _among_the_newest(folded, limit, after, is_active, namespace, document)
        if page is not None:
            return page
        indexed = _held_by_few(folded, limit)
    if indexed:
        select = SEARCH_DOCUMENTS.format(document=document)
        sql, params = _filtered(select, [_phrase(folded), namespace], is_active, after)
    else:
        select = SELECT_DOCUMENTS.format(document=document)
        sql, params = _filtered(select, [namespace], is_active, after)
    if folded:
        sql += HOLDS
        params.append(_pattern(folded))
    sql += NEWEST_FIRST
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [row[0] for row in db.execute_sql(sql, params)]


def last_sequence():
    """The number of the agent stored last (0 for none): agents stored next come after it."""
    return db.execute_sql(LAST_SEQUENCE).fetchone()[0] or 0


def _filtered(select, params, is_active, after):
    sql = [select]
    if is_active is not None:
        sql.append(' AND "is_active" = ?')
        params.append(is_active)
    if after is not None:
        # A row value, unlike the equivalent OR, lets SQLite start the index scan at the cursor.
        sql.append(' AND ("created_at", "id") < (?, ?)')
        params.extend(after)
    return "".join(sql), params


def _pattern(folded):
    escaped = folded.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return f"%{escaped}%"


def _among_the_newest(folded, limit, after, is_active, namespace, document):
    """The page of a search if the newest SCAN_FIRST agents hold it (or are all there is)."""
    sql, params = _filtered(POSITIONS, [namespace], is_active, after)
    edge = db.execute_sql(f"{sql}{NEWEST_FIRST} LIMIT 1 OFFSET ?", (*params, SCAN_FIRST - 1))
    edge = edge.fetchone()
    select = SELECT_DOCUMENTS.format(document=document)
    sql, params = _filtered(select, [namespace], is_active, after)
    sql += HOLDS
    params.append(_pattern(folded))
    if edge is not None:
        sql += ' AND ("created_at", "id") >= (?, ?)'
        params.extend(edge)
    page = [row[0] for row in db.execute_sql(f"{sql}{NEWEST_FIRST} LIMIT ?", (*params, limit))]
    if len(page) < limit and edge is not None:
        return None
    return page


def _held_by_few(folded, limit):
    """Whether sorting the agents that hold `folded` costs less than scanning for a page.

    Sorting costs about as much per agent as the scan does per agent it reads, and the scan
    reads about limit × agents ÷ holders, so the two cost the same at √(limit × agents) holders.
    """
    most = max(SCAN_FIRST, math.isqrt((limit + 1) * last_sequence()))
    held_by = db.execute_sql(COUNT_MATCHES, (_phrase(folded), most + 1)).fetchone()[0]
    return held_by <= most


def _phrase(folded):
    """An FTS5 query for the text as one phrase: every trigram of it, in a row."""
    return '"' + folded.replace('"', '""') + '"'
