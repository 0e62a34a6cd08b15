"""What the keeper's starter tells a client when the keeper could not start: the line it
writes on its pipe, and the DRMAA2 exception the client makes of it."""

from __future__ import annotations

import sqlite3

import pytest

import drmaa2
from drmaa2_ostracker.keeper.__main__ import _failure
from drmaa2_ostracker.keeper.starting import _start_failure


@pytest.mark.parametrize(
    "error",
    [sqlite3.DatabaseError("database disk image is malformed"), sqlite3.IntegrityError("x")],
)
def test_a_store_damaged_where_recovery_reads_it_is_named_with_what_to_do(error: Exception) -> None:
    """Damage the store's inspection cannot see, met while the keeper recovers (a page of
    its jobs overwritten): the store is named, and what to do (before: only SQLite's words
    and a pointer to the keeper's log)."""
    raised = _start_failure("/state", _failure("/state", error).removeprefix("error: "))
    assert type(raised) is drmaa2.SessionManagementException
    message = str(raised)
    assert message.startswith("/state/store.sqlite3 is not a usable drmaa2-ostracker store")
    assert str(error) in message and "move it away" in message


def test_a_busy_store_is_not_called_damaged() -> None:
    raised = _start_failure(
        "/state",
        _failure("/state", sqlite3.OperationalError("database is locked")).removeprefix("error: "),
    )
    assert "not a usable" not in str(raised)
    assert "database is locked" in str(raised)
