"""Case-insensitive substring filters (`filter[...][contains]`) narrowed by a trigram index.

The meaning is the LIKE predicate on both engines: `lower(column)` contains `lower(value)`, with `%`
and `_` literal (SQLite's lower() and LIKE fold ASCII letters only:
https://www.sqlite.org/lang_corefunc.html#lower). The index only narrows the rows it is checked on:
PostgreSQL's pg_trgm GIN index on lower(column) serves the LIKE itself
(https://www.postgresql.org/docs/current/pgtrgm.html#PGTRGM-INDEX); on SQLite an FTS5 table with the
trigram tokenizer (https://www.sqlite.org/fts5.html#the_trigram_tokenizer), its rowid the record's
numeric id (store/ids.py) and kept in step by triggers, finds a superset of the rows: the tokenizer
folds case for every letter, LIKE for ASCII ones. Which tables have one: migrations 0005 and 0009.
"""

from __future__ import annotations

import sqlalchemy as sa

# FTS5 finds nothing for a phrase shorter than a trigram; such filters keep the plain predicate.
TRIGRAM_MIN = 3


def narrows(value: str, dialect: str) -> bool:
    """True when the SQLite trigram table answers for `value`: then it should drive the query."""
    return dialect == "sqlite" and len(value.lower()) >= TRIGRAM_MIN


def like(column: sa.Column[str], value: str) -> sa.ColumnElement[bool]:
    """`lower(column)` contains `value`: the filter's meaning, on every engine."""
    return sa.func.lower(column).contains(value.lower(), autoescape=True)


def candidates(
    value: str, dialect: str, *, trigram_table: str, id_column: sa.Column[str]
) -> sa.ColumnElement[bool] | None:
    """On SQLite, `id_column` among the rows the trigram table `trigram_table` finds for `value` (a
    superset of the matches); None where no such table answers."""
    if not narrows(value, dialect):
        return None
    # An FTS5 string, quotes doubled, is one phrase: its trigrams in sequence, so a substring
    # (https://www.sqlite.org/fts5.html#fts5_strings).
    phrase = '"' + value.lower().replace('"', '""') + '"'
    trigrams = sa.table(trigram_table, sa.column("rowid", sa.Integer))
    match = sa.literal_column(trigram_table).op("MATCH")
    return id_column.in_(sa.select(sa.cast(trigrams.c.rowid, sa.Text)).where(match(phrase)))


def unindexed(column: sa.Column[str], drives: bool) -> sa.ColumnElement[str]:
    """`column`, or an expression of it that SQLite will not use an index for, when another term
    `drives` the query: without statistics its planner would rather walk the account's index and test
    every row against the few candidates
    (https://www.sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_)."""
    return column.concat("") if drives else column
