"""``gobot vision replay``: send a past cycle's charts to the model again (or read its cached answer).

The plugin imports nothing of gobot's core, so the command reads the config file itself: the
top-level ``state_dir`` and the ``[plugins.vision]`` section, paths relative to the file's folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


#: ``load_config`` from ``gobot_register_commands``: the configuration as ``gobot start`` sees it.
LOAD_CONFIG: Any = None


def _load(config_path: str | None) -> tuple[Any, Path]:
    """The validated vision section and the cache folder, from --config, $GOBOT_CONFIG or ./config.toml.

    Through the core's ``load_config`` when vision is enabled there, so ``GOBOT_PLUGINS__VISION__...``
    and ``GOBOT_STATE_DIR`` apply as they do to the bot (the endpoint is part of the cache key: a
    replay must ask, and look up, what the bot did); else from the file's own section."""
    from pydantic import ValidationError

    from .config import VisionConfig

    if LOAD_CONFIG is not None:
        view = LOAD_CONFIG(config_path)
        config = view.plugin_config("vision")
        if config is not None:
            core = view.config
            return config, (core.resolve(config.cache_dir) if config.cache_dir else core.state_path / "vision")
    path = (Path(config_path) if config_path
            else Path(os.environ["GOBOT_CONFIG"]) if os.environ.get("GOBOT_CONFIG") else Path("config.toml"))
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise click.ClickException(f"{path}: {exc}") from None
    elif config_path or os.environ.get("GOBOT_CONFIG"):
        raise click.ClickException(f"{path}: no such file")
    base = path.resolve().parent if path.exists() else Path.cwd()
    section = data.get("plugins", {}).get("vision", {})
    try:
        config = VisionConfig.model_validate(section)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise click.ClickException(f"{path}:plugins.vision{'.' + where if where else ''}: {error['msg']}") from None

    def resolve(value: str) -> Path:
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    root = (resolve(config.cache_dir) if config.cache_dir
            else resolve(str(data.get("state_dir", "gobot_state"))) / "vision")
    return config, root


@click.group()
def vision() -> None:
    """Vision signals: look at and re-run what the model was shown."""


@vision.command()
@click.argument("cycle", type=int, required=False)
@click.option("--run", "run_id", default=None, help="Run id (default: the latest run with vision requests).")
@click.option("--symbol", default=None, help="Only this symbol, e.g. BTC/USDT.")
@click.option("--model", default=None, help="Ask this model instead of the one recorded (a new cache key).")
@click.option("--no-cache", is_flag=True,
              help="Ask the endpoint even when the answer is cached (and update the cache).")
@click.option("--list", "list_only", is_flag=True, help="List the recorded cycles instead of re-running one.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Config file (default: $GOBOT_CONFIG, else ./config.toml).")
def replay(cycle, run_id, symbol, model, no_cache, list_only, config_path):
    """Re-run a past cycle's charts through the vision model (default: the latest cycle).

    The charts are the ones that cycle sent (kept in <state_dir>/vision/images). With the same
    model and prompt the answer comes from the cache: nothing is sent and nothing is spent.
    Prints, per symbol, what the model said then and now, and whether the gate let it through.
    """
    import asyncio

    from rich.console import Console
    from rich.table import Table

    from .store import VisionStore

    config, root = _load(config_path)
    store = VisionStore(root)
    entries = store.requests()
    if not entries:
        raise click.ClickException(f"no vision requests recorded in {root}: run the bot with the vision plugin first")
    console = Console()
    if list_only:
        table = Table(title=f"Vision requests in {root}")
        for column in ("run", "cycle", "time", "symbol", "charts", "action", "cached"):
            table.add_column(column)
        for entry in entries[-200:]:
            table.add_row(
                entry["run_id"], str(entry["iteration"]), entry["time"][:16], entry["symbol"],
                " ".join(c["timeframe"] for c in entry["charts"]), entry["outcome"]["action"],
                "yes" if entry["cached"] else "no",
            )
        console.print(table)
        return
    run_id = run_id or entries[-1]["run_id"]
    in_run = [e for e in entries if e["run_id"] == run_id]
    if not in_run:
        raise click.ClickException(f"no vision requests for run {run_id}; see `gobot vision replay --list`")
    cycle = cycle if cycle is not None else in_run[-1]["iteration"]
    chosen = [e for e in in_run if e["iteration"] == cycle and (symbol is None or e["symbol"] == symbol)]
    if not chosen:
        raise click.ClickException(f"no vision requests for cycle {cycle} of run {run_id}; "
                                   "see `gobot vision replay --list`")
    rows = asyncio.run(_replay(config, store, chosen, model, no_cache))
    table = Table(title=f"run {run_id}, cycle {cycle} ({chosen[0]['time'][:16]} UTC)")
    for column in ("symbol", "charts", "then", "now", "conf", "agree", "from", "tokens", "why"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


async def _replay(config, store, entries: list[dict], model: str | None, no_cache: bool) -> list[tuple[str, ...]]:
    from .answer import Reading, read_answer
    from .client import VisionClient, image_hashes, request_key

    api_key = os.environ.get("OPENAI_API_KEY", "").strip() or None
    if model:
        config = config.model_copy(update={"model": model})
    client = VisionClient(config, store, api_key)
    rows = []
    try:
        for entry in entries:
            body = dict(entry["request"])
            if model:
                body["model"] = model
            shown = [c["timeframe"] for c in entry["charts"]]
            then = f"{entry['outcome']['action']} {entry['outcome']['confidence']:.2f}"
            images = {sha: store.get_image(sha) for sha in image_hashes(body)}
            lost = [sha[:12] for sha, png in images.items() if png is None]
            key = request_key(body, config.base_url)
            cached = None if no_cache or not config.cache else store.get_answer(key)
            if lost and cached is None:
                rows.append((entry["symbol"], " ".join(shown), then, "-", "", "", "", "",
                             f"charts not kept ({', '.join(lost)}): keep_images = false?"))
                continue
            if cached is None and not api_key and not config.base_url:
                rows.append((entry["symbol"], " ".join(shown), then, "-", "", "", "", "",
                             "not cached, and no OPENAI_API_KEY or base_url to ask"))
                continue
            asked = await client.ask(body, images, use_cache=not no_cache)
            if asked.answer is not None:
                reading = read_answer(
                    asked.answer.get("content"), asked.answer.get("refusal"), asked.answer.get("finish_reason"),
                    price=entry["price"], shown=shown, min_agreeing=config.min_agreeing_timeframes,
                )
            else:
                reading = Reading.hold(asked.failure or "no answer")
            action = "HOLD" if reading.problem else reading.action
            confidence = 0.0 if reading.problem else reading.confidence
            source = "cache" if asked.cached else body["model"]
            why = reading.problem or reading.rationale
            rows.append((
                entry["symbol"], " ".join(shown), then, action, f"{confidence:.2f}",
                f"{len(reading.agreeing)}/{len(shown)}", source, str(asked.tokens), why[:200],
            ))
    finally:
        await client.close()
    return rows
