"""A replay data folder with recorded sentiment, for the sentiment tests: the session's synthetic candles
(copied, never written into) and a ``sentiment/fear_greed.csv`` written with the contract's own
``append_reading``, in the format of the public Fear & Greed index (value 0-100 + classification)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gobot.testing.fixtures import replay_test_risk_toml
from gobot_hookspecs import Sentiment
from gobot_hookspecs.sentiment import append_reading, recorded_path

DAY0 = datetime(2026, 1, 1, tzinfo=timezone.utc)  # the synthetic market's first candle (DEMO_START)


def classification(value: float) -> str:
    """The index's own labels (alternative.me: 0-24 Extreme Fear ... 75-100 Extreme Greed)."""
    for upper, label in ((25, "Extreme Fear"), (47, "Fear"), (54, "Neutral"), (76, "Greed")):
        if value < upper:
            return label
    return "Extreme Greed"


def fear_greed(time: datetime, value: float, valid_for: timedelta | None = timedelta(days=1)) -> Sentiment:
    """One daily reading as the fear_greed plugin records it (score = (value - 50) / 50)."""
    score = (value - 50) / 50
    return Sentiment(source="fear_greed", time=time, valid_until=time + valid_for if valid_for else None,
                     score=score, fields={"value": float(value), "classification": classification(value)},
                     inputs={"value": score})


def data_folder(folder: Path, synthetic_data_dir: Path, readings: list[Sentiment] = ()) -> Path:
    """``folder`` with the synthetic candles and (when ``readings``) ``sentiment/fear_greed.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in synthetic_data_dir.glob("*.csv"):
        shutil.copy(path, folder / path.name)
    for reading in readings:
        append_reading(recorded_path(folder, reading.source), reading)
    return folder


def config_file(folder: Path, data_dir: Path, *, check: bool, extra: str = "") -> Path:
    """A paper config on ``data_dir``: 5-minute cycles, the test risk settings, sentiment_extremes when ``check``."""
    enable = ["sentiment_extremes"] if check else []
    path = folder / "config.toml"
    path.write_text(f'state_dir = "state"\n[orchestrator]\nloop_interval = 300\n'
                    f'[plugins]\nenable = {json.dumps(enable)}\n'
                    f'[plugins.replay]\ndata_dir = "{data_dir}"\n' + replay_test_risk_toml() + extra,
                    encoding="utf-8")
    return path


def audit(state_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (state_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()]


def verdicts(state_dir: Path, plugin: str = "sentiment_extremes") -> list[dict]:
    """Every verdict of ``plugin`` in the audit log, with the intent's side."""
    out = []
    for event in audit(state_dir):
        if event["event"] == "risk_verdicts":
            for verdict in event["verdicts"]:
                if verdict["plugin"] == plugin:
                    out.append({**verdict, "side": event["intent"]["side"]})
    return out
