"""``gobot state restore``: put back the previous good generation of ``state.json`` (audited)."""

from __future__ import annotations

import click

from gobot.cli.common import config_option
from gobot.errors import GobotError


class RestoreRefused(GobotError):
    """``gobot state restore`` will not run, and says why (exit status 2)."""


@click.group()
def state():
    """The bot's state file, state.json, and its backup.

    Every save keeps the generation it replaces as state.json.bak. A damaged state.json (truncated,
    empty, garbled, NUL bytes, wrong types, impossible values) is never used: `gobot start` and
    `gobot status` refuse with the file, the key and the fix. `gobot state restore` is the fix.
    """


@state.command()
@config_option
@click.option("--force", is_flag=True,
              help="Restore although state.json is readable: rolls the run back to the backup's cycle.")
@click.option("--reason", default="state.json damaged", show_default=True, help="Why: kept in the audit log.")
def restore(config_path, force, reason):
    """Put back state.json's backup (state.json.bak, the generation before the last save).

    The run then resumes after the backup's cycle: the cycle after it runs again with the same
    client order ids, exactly like a restart after a crash before that cycle's state was saved
    (an exchange plugin finds its orders; the paper executor's book is in the state too).

    The file it replaces is kept as state.json.damaged-<UTC time> for inspection, and the restore
    is written to the audit log (event state_restored). Refused, with exit status 2, while a bot
    runs on the state folder, when the backup is missing or damaged too, and — unless --force —
    when state.json is readable.
    """
    from gobot.cli.control import _audit
    from gobot.config import load_settings
    from gobot.run.state import StateDamage, StateError, StateStore

    settings = load_settings(config_path)
    store = StateStore(settings.state_path)
    backup = store.backup_file
    if store.bot_running():
        raise RestoreRefused(f"a bot is running on {store.dir}: stop it first (it holds the state in memory and would "
                             "write over the restored file)")
    try:
        good = store.read_backup()
    except FileNotFoundError:
        raise RestoreRefused(f"{backup}: there is no backup to restore (one is kept from a run's second save on); "
                             f"move {store.state_file.name} aside to start a new run") from None
    except StateDamage as exc:
        key, problem = exc.problems[0]
        where = f"{backup}:{key}" if key else str(backup)
        raise RestoreRefused(f"{where}: {problem} — the backup is damaged too; "
                             f"correct a file by hand, or move {store.state_file.name} aside to start a new run "
                             "(check the exchange for positions the old run held first)") from None
    damage = ""
    try:
        current = store.load()
    except StateError as exc:
        damage = str(exc).split(" — fix: ")[0]
    else:
        if current is not None and not force:
            raise RestoreRefused(f"{store.state_file} is readable (run {current.run_id} after cycle "
                                 f"{current.iteration}): nothing to restore; --force rolls it back to {backup.name} "
                                 f"(run {good.run_id} after cycle {good.iteration})")
        if current is not None:
            damage = f"readable (run {current.run_id} after cycle {current.iteration}); restored with --force"
    restored, kept = store.restore_backup()
    _audit(settings, restored, "state_restored", reason=reason, source="gobot state restore", backup=str(backup),
           replaced=str(kept) if kept else None, problem=damage or "state.json missing", forced=force)
    click.echo(f"Restored {store.state_file} from {backup.name}: run {restored.run_id} "
               f"after cycle {restored.iteration}.")
    if kept:
        click.echo(f"The file it replaced is kept as {kept}.")
    click.echo(f"`gobot start` resumes the run after cycle {restored.iteration}; "
               f"the restore is in {settings.state_path / 'audit.jsonl'}.")
