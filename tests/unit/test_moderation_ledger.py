"""Moderator clicks remembered per mod-log entry, and the purity of the moderation core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.moderation import ButtonAction
from bot.moderation.ledger import EntryLedger, entry_finished

ROOT = Path(__file__).resolve().parents[2]
DISCORD_FACING = {"discord"}  # the subpackage bot.moderation.discord (see also `make lint`)


def test_an_entry_is_finished_once_dismissed_or_both_acted_on() -> None:
    assert not entry_finished(set())
    assert not entry_finished({ButtonAction.DELETE}) and not entry_finished({ButtonAction.TIMEOUT})
    assert entry_finished({ButtonAction.DISMISS})
    assert entry_finished({ButtonAction.DELETE, ButtonAction.TIMEOUT})


def test_actions_taken_are_remembered_per_entry_and_bounded() -> None:
    ledger = EntryLedger(max_entries=2)
    ledger.record(1, {ButtonAction.DELETE})
    taken = ledger.taken(1)
    taken.add(ButtonAction.TIMEOUT)  # a copy: the caller cannot change the ledger by accident
    assert ledger.taken(1) == {ButtonAction.DELETE} and ledger.taken(2) == set()
    ledger.record(2, {ButtonAction.DISMISS})
    ledger.record(3, {ButtonAction.TIMEOUT})
    assert ledger.taken(1) == set() and ledger.taken(3) == {ButtonAction.TIMEOUT}  # the oldest went first


def test_one_lock_per_entry_and_the_oldest_locks_are_dropped() -> None:
    ledger = EntryLedger(max_locks=2)
    first = ledger.lock(1)
    assert ledger.lock(1) is first and ledger.lock(2) is not first
    ledger.lock(3)
    assert ledger.lock(1) is not first


def test_the_core_does_not_import_discord() -> None:
    """Only the Discord-facing modules may import discord; the rest is tested without a bot."""
    code = (
        "import importlib, pkgutil, sys, bot.moderation as m\n"
        f"skip = {sorted(DISCORD_FACING)!r}\n"
        "names = [n.name for n in pkgutil.iter_modules(m.__path__) if n.name not in skip]\n"
        "for name in names: importlib.import_module('bot.moderation.' + name)\n"
        "assert 'service' in names and 'ledger' in names, names\n"
        "print('discord' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT
    )
    assert done.stdout.strip() == "False", done.stdout + done.stderr
