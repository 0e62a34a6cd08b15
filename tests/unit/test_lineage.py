"""The lineages a keeper notes in its lock file (see drmaa2_ostracker.store.orphans)."""

from __future__ import annotations

from pathlib import Path

from drmaa2_ostracker.process import ProcessIdentity
from drmaa2_ostracker.store.orphans import Lineage, Orphans


def test_lineages_are_read_back_as_written() -> None:
    lineages = [
        Lineage(ProcessIdentity(10, 1000), ProcessIdentity(9, 999), recovered=True),
        Lineage(ProcessIdentity(20, 2000), None),
        Lineage(ProcessIdentity(30, 3000), ProcessIdentity(29, 2999)),
    ]
    text = "30\nkeepers " + " ".join(str(each) for each in lineages) + "\n"
    assert text.splitlines()[1] == "keepers 10.1000:9.999:recovered 20.2000:- 30.3000:29.2999"
    assert Lineage.parse_all(text) == lineages


def test_a_lock_file_of_an_earlier_release_notes_no_lineage() -> None:
    assert Lineage.parse_all("1234\n") == []
    assert Lineage.parse_all("1234\nkeepers garbage\n") == []


def test_the_launch_bound_is_the_start_of_the_last_keeper_that_recovered(tmp_path: Path) -> None:
    orphans = Orphans(str(tmp_path))
    assert orphans.launch_bound() is None
    orphans.lineages = Lineage.parse_all("3\nkeepers 1.100:2.99:recovered 3.300:4.299:recovered\n")
    assert orphans.launch_bound() == 300
    orphans.lineages = Lineage.parse_all("3\nkeepers 1.100:2.99:recovered 3.300:4.299\n")
    assert orphans.launch_bound() == 100, "the last keeper may not have decided the first's"


def test_without_lineages_nothing_can_be_told(tmp_path: Path) -> None:
    """A keeper of an earlier release came before: whether a fork happened is unknown."""
    assert Orphans(str(tmp_path)).launched_since(0, set()) is None
