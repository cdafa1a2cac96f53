"""What scopes one gate run, as PostgreSQL session settings the committed SQL reads.

The project's queries are fixed text (committed, shared by every run); the gate
puts the run's window start and clock on each connection (`-c klinehouse.since=…
-c klinehouse.as_of=…`), and the SQL reads them back. Unset or empty means the
whole table and the database's `now()`.
"""

from __future__ import annotations

from typing import Final

SINCE_SETTING: Final = "klinehouse.since"
AS_OF_SETTING: Final = "klinehouse.as_of"

# The window start: rows with open_time >= this are validated.
SINCE_SQL: Final = (
    f"coalesce(nullif(current_setting('{SINCE_SETTING}', true), ''), '-infinity')::timestamptz"
)
# The run's clock: "in the future" and "stale" are judged against it (a replay or a
# backfill validates as of its own time; a live run as of now()).
AS_OF_SQL: Final = (
    f"coalesce(nullif(current_setting('{AS_OF_SETTING}', true), '')::timestamptz, now())"
)
