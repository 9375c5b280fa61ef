"""Upload folders end with their sessions (rfm.dashboard.uploads): the janitor's rules with a fake
clock and fake sessions, and `datasets.end_upload_session`'s refusal to touch anything it did not make."""

from __future__ import annotations

import os
from pathlib import Path

from rfm.dashboard.uploads import UploadJanitor
from rfm.service import datasets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(alive: set[str], clock: Clock, removed: list[str]) -> UploadJanitor:
    return UploadJanitor(is_alive=lambda sid: sid in alive, grace_s=120, period_s=30,
                         remove=removed.append, clock=clock)


def test_a_folder_is_removed_only_after_its_session_is_gone_for_the_grace_period() -> None:
    alive, clock, removed = {"a", "b"}, Clock(), []
    janitor = make(alive, clock, removed)
    janitor.track("/up/a", "a")
    janitor.track("/up/b", "b")
    clock.now += 500
    assert janitor.sweep() == [] and removed == []  # both connected: kept however old
    alive.discard("a")
    clock.now += 60
    assert janitor.sweep() == []  # a disconnected 60 s ago: it may still reconnect
    clock.now += 61
    assert janitor.sweep() == ["/up/a"] and removed == ["/up/a"]
    assert janitor.tracked() == ["/up/b"]
    clock.now += 10_000
    assert janitor.sweep() == []  # b is still connected


def test_a_session_that_reconnects_within_the_grace_period_keeps_its_folder() -> None:
    alive, clock, removed = {"a"}, Clock(), []
    janitor = make(alive, clock, removed)
    janitor.track("/up/a", "a")
    alive.clear()
    clock.now += 100
    janitor.sweep()
    alive.add("a")  # the tab came back (a network blip)
    clock.now += 100
    janitor.sweep()
    alive.clear()
    clock.now += 100
    assert janitor.sweep() == [] and removed == []  # only 100 s since it was last seen
    clock.now += 21
    assert janitor.sweep() == ["/up/a"]


def test_at_exit_every_tracked_folder_is_removed() -> None:
    alive, clock, removed = {"a", "b"}, Clock(), []
    janitor = make(alive, clock, removed)
    janitor.track("/up/a", "a")
    janitor.track("/up/b", "b")
    janitor.remove_all()
    assert sorted(removed) == ["/up/a", "/up/b"] and janitor.tracked() == []


def test_end_upload_session_removes_only_a_session_folder(tmp_path: Path) -> None:
    folder = datasets.start_upload_session(tmp_path / "uploads")
    saved = datasets.save_upload("log.csv", b"a,b\n1,2\n", folder)
    assert saved.is_file()
    assert datasets.end_upload_session(folder) is True and not folder.exists()

    other = tmp_path / "uploads" / "not-a-session"
    other.mkdir()
    assert datasets.end_upload_session(other) is False and other.is_dir()
    target = tmp_path / "precious"
    target.mkdir()
    link = tmp_path / "uploads" / ("ab" * 16)
    os.symlink(target, link)
    assert datasets.end_upload_session(link) is False and target.is_dir()
