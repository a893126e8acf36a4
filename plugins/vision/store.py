"""The vision plugin's files: cached answers, kept charts, the request index and the daily spend ledger.

All under one folder (``cache_dir``, default ``<state_dir>/vision``), owner-only, written atomically:

- ``answers/<k2>/<key>.json``: the model's raw answer per request key (image hashes + prompt + prompt
  version + model + base_url);
- ``images/<h2>/<sha256>.png``: every chart sent, by content (the same chart is stored once);
- ``requests.jsonl``: one line per request: cycle, symbol, charts, the request without its images,
  the outcome — what ``gobot vision replay`` re-runs;
- ``spend.json``: tokens, estimated USD and requests per UTC day. It lives on disk, not in the bot's
  state, so the cap holds across runs and restarts on the same day.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

from gobot_hookspecs.files import write_private

LEDGER_DAYS = 31


def _private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents owner-only (``mkdir(parents=True)`` would apply the umask)."""
    missing, folder = [], path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    _private_dir(path.parent)
    write_private(path, data)


class VisionStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    # -- answers ----------------------------------------------------------------------------------

    def _answer_path(self, key: str) -> Path:
        return self.root / "answers" / key[:2] / f"{key}.json"

    def get_answer(self, key: str) -> dict[str, Any] | None:
        path = self._answer_path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a damaged cache entry is a miss, not an error

    def put_answer(self, key: str, answer: dict[str, Any]) -> None:
        _atomic_write(self._answer_path(key), json.dumps(answer, sort_keys=True).encode())

    # -- images -----------------------------------------------------------------------------------

    def _image_path(self, sha256: str) -> Path:
        return self.root / "images" / sha256[:2] / f"{sha256}.png"

    def put_image(self, sha256: str, png: bytes) -> None:
        path = self._image_path(sha256)
        if not path.exists():
            _atomic_write(path, png)

    def get_image(self, sha256: str) -> bytes | None:
        try:
            return self._image_path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    # -- request index ------------------------------------------------------------------------------

    @property
    def index_path(self) -> Path:
        return self.root / "requests.jsonl"

    def record_request(self, entry: dict[str, Any]) -> None:
        _private_dir(self.root)
        fd = os.open(self.index_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True, default=str) + "\n")

    def requests(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The request index, oldest first; ``run_id``: that run's entries only (a line is parsed only
        when it names the run: the index holds every run that used this folder)."""
        try:
            lines = self.index_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        if run_id is not None:
            needle = json.dumps({"run_id": run_id})[1:-1]  # '"run_id": "..."', as record_request writes it
            lines = [line for line in lines if needle in line]
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash
        return entries

    def requests_by_cycle(self, run_id: str) -> dict[tuple[int, str], dict[str, Any]]:
        """What the model was shown and answered, by (cycle, symbol) of one run: the request index's entry
        (a cycle run again after a crash asked again: its last request is the one its signal came from).
        The archiver's trade stories read it to show a vision signal's charts and answer."""
        return {(int(e["iteration"]), str(e["symbol"])): e for e in self.requests(run_id)
                if "iteration" in e and "symbol" in e}

    def answer_text(self, entry: dict[str, Any]) -> str | None:
        """The model's answer to a request of the index, as it gave it: the text recorded with the request
        (since issue 20), else the cached answer of its key; None when neither is kept."""
        answer = entry.get("answer")
        if answer is None and entry.get("key"):
            cached = self.get_answer(str(entry["key"])) or {}
            answer = cached.get("content") or cached.get("refusal")
        return answer

    def shown_to_model(self, run_id: str, wanted: set[tuple[int, str]], max_with_images: int = 200,
                       ) -> dict[tuple[int, str], tuple[list[str], str]]:
        """For each (cycle, symbol) of ``wanted``: the charts the model was shown, as ``data:image/png;base64``
        URIs, and its answer as it gave it, followed by a note in brackets when something is missing (charts
        not kept, no record of the request). Only the newest ``max_with_images`` cycles get their charts (a
        page of thousands of trades would not hold them all); the others say so."""
        seen = self.requests_by_cycle(run_id)
        with_images = set(sorted(wanted)[-max_with_images:]) if max_with_images > 0 else set()
        found = {}
        for cycle in wanted:
            entry = seen.get(cycle)
            if entry is None:
                found[cycle] = ([], f"[no vision request of cycle {cycle[0]} for {cycle[1]} in {self.index_path}]")
                continue
            images, notes = [], []
            charts = entry.get("charts") or []
            for chart in charts if cycle in with_images else ():
                png = self.get_image(str(chart.get("sha256", "")))
                if png is not None:
                    images.append("data:image/png;base64," + base64.b64encode(png).decode("ascii"))
            if cycle not in with_images and charts:
                notes.append(f"the {len(charts)} chart(s) are left out: only the newest {max_with_images} vision "
                             "trades carry theirs here")
            elif len(images) < len(charts):
                why = "[plugins.vision] keep_images was off" if entry.get("images_kept") is False else "not found"
                notes.append(f"{len(charts) - len(images)} of the {len(charts)} chart(s) the model saw are not kept "
                             f"({why})")
            answer = self.answer_text(entry) or "(no answer kept)"
            found[cycle] = (images, answer + "".join(f"\n[{note}]" for note in notes))
        return found

    # -- spend ledger -------------------------------------------------------------------------------

    @property
    def ledger_path(self) -> Path:
        return self.root / "spend.json"

    def spend(self, day: date) -> dict[str, float]:
        ledger = self._ledger()
        return {"tokens": 0, "usd": 0.0, "requests": 0, **ledger.get(day.isoformat(), {})}

    def add_spend(self, day: date, tokens: int, usd: float) -> dict[str, float]:
        ledger = self._ledger()
        today = {"tokens": 0, "usd": 0.0, "requests": 0, **ledger.get(day.isoformat(), {})}
        today["tokens"] += tokens
        today["usd"] = round(today["usd"] + usd, 8)
        today["requests"] += 1
        ledger[day.isoformat()] = today
        keep = sorted(ledger)[-LEDGER_DAYS:]
        _atomic_write(self.ledger_path, json.dumps({d: ledger[d] for d in keep}, indent=1, sort_keys=True).encode())
        return today

    def _ledger(self) -> dict[str, dict[str, float]]:
        # Fails closed: an unreadable ledger stops requests (the caller turns this into HOLD).
        try:
            data = json.loads(self.ledger_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"{self.ledger_path}: unreadable spend ledger ({exc}); "
                               "delete it to reset the count") from None
        if not isinstance(data, dict):
            raise RuntimeError(f"{self.ledger_path}: unreadable spend ledger (not a JSON object); "
                               "delete it to reset the count")
        return data
