"""The one InfluxQL statement ingest answers on ``/query``: ``CREATE DATABASE``.

InfluxDB 1.x clients create their database before writing: Telegraf's ``outputs.influxdb``
(unless ``skip_database_creation``), the influx CLI, the Python ``influxdb`` client. Ingest
writes every point to the key's tenant database whatever ``db`` a client names, so such a
statement has nothing left to do; answering it as done keeps those clients from retrying it
and logging a warning at every flush. Its syntax is still checked as InfluxDB 1.x checks it:

    CREATE DATABASE <identifier> [WITH [DURATION <duration>] [REPLICATION <n>]
                                       [SHARD DURATION <duration>] [NAME <identifier>]]

Any other statement is not ingest's to answer (a collector key can only write).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENTIFIER = r'(?:[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\\n]|\\[\s\S])*")'
_DURATION = r"(?:INF|(?:[0-9]+(?:ns|u|µ|ms|s|m|h|d|w))+)"
_CREATE_DATABASE = re.compile(
    rf"""CREATE\s+DATABASE\s+(?P<name>{_IDENTIFIER})
    (?:\s+WITH
       (?=\s+(?:DURATION|REPLICATION|SHARD|NAME)\b)
       (?:\s+DURATION\s+{_DURATION})?
       (?:\s+REPLICATION\s+[0-9]+)?
       (?:\s+SHARD\s+DURATION\s+{_DURATION})?
       (?:\s+NAME\s+{_IDENTIFIER})?
    )?""",
    re.IGNORECASE | re.VERBOSE,
)
_CREATE_DATABASE_START = re.compile(r"CREATE\s+DATABASE\b", re.IGNORECASE)
# InfluxQL's keywords (its specification): not a name unless quoted
# fmt: off
_KEYWORDS = frozenset({
    "ALL", "ALTER", "ANALYZE", "ANY", "AS", "ASC", "BEGIN", "BY", "CARDINALITY", "CREATE",
    "CONTINUOUS", "DATABASE", "DATABASES", "DEFAULT", "DELETE", "DESC", "DESTINATIONS",
    "DIAGNOSTICS", "DISTINCT", "DROP", "DURATION", "END", "EVERY", "EXACT", "EXPLAIN", "FIELD",
    "FOR", "FROM", "GRANT", "GRANTS", "GROUP", "GROUPS", "IN", "INF", "INSERT", "INTO", "KEY",
    "KEYS", "KILL", "LIMIT", "MEASUREMENT", "MEASUREMENTS", "NAME", "OFFSET", "ON", "ORDER",
    "PASSWORD", "POLICY", "POLICIES", "PRIVILEGES", "QUERIES", "QUERY", "READ", "REPLICATION",
    "RESAMPLE", "RETENTION", "REVOKE", "SELECT", "SERIES", "SET", "SHARD", "SHARDS", "SLIMIT",
    "SOFFSET", "STATS", "SUBSCRIPTION", "SUBSCRIPTIONS", "TAG", "TO", "USER", "USERS", "VALUES",
    "WHERE", "WITH", "WRITE",
})
# fmt: on
# the text of a statement up to the next ';' outside quoted identifiers and strings
_STATEMENT = re.compile(r"""(?:[^;"']++|"(?:[^"\\]|\\[\s\S])*+"|'(?:[^'\\]|\\[\s\S])*+')*+""")


class QueryError(ValueError):
    """The query is not valid InfluxQL, or not a statement ingest answers."""

    def __init__(self, message: str, forbidden: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.forbidden = forbidden


@dataclass(frozen=True)
class CreateDatabase:
    name: str  # as written: unquoted, or quoted with its escapes


def statements(query: str) -> list[str]:
    """The statements of ``query``, split at semicolons outside quotes, blank ones left out."""
    found: list[str] = []
    pos = 0
    while True:
        match = _STATEMENT.match(query, pos)
        assert match is not None  # the pattern also matches the empty string
        end = match.end()
        if end < len(query) and query[end] != ";":
            raise QueryError(f"unterminated quote at character {end + 1}")
        if match.group().strip():
            found.append(match.group().strip())
        if end >= len(query):
            return found
        pos = end + 1


def create_database(statement: str, number: int) -> CreateDatabase:
    """The CREATE DATABASE ``statement`` (``number`` counts from 1, for messages)."""
    whole = _CREATE_DATABASE.fullmatch(statement)
    if whole is not None and whole.group("name").upper() not in _KEYWORDS:
        return CreateDatabase(whole.group("name"))
    if _CREATE_DATABASE_START.match(statement):
        raise QueryError(
            f"statement {number}: {_shown(statement)} is not valid: expected CREATE DATABASE "
            "<name> [WITH [DURATION <d>] [REPLICATION <n>] [SHARD DURATION <d>] [NAME <rp>]]"
        )
    raise QueryError(
        f"statement {number}: {_shown(statement)} is not answered here: a collector key can "
        "only write, and ingest answers CREATE DATABASE alone on /query (every point goes to "
        "the key's tenant database); query InfluxDB or Grafana instead",
        forbidden=True,
    )


def _shown(statement: str) -> str:
    return repr(statement if len(statement) <= 60 else statement[:57] + "...")
