"""Everything a backtest or an optimization takes from the configuration, in one place: the
strategy component (registered by an enabled plugin), its parameters (declared defaults, then
``[strategies.<name>]``, then ``--set``), the candles (``--data`` or ``[backtest] data_dir``), the
execution rules (``[backtest]``, falling back to ``[plugins.paper]`` and ``[trading]`` so a backtest
fills like the paper executor), and the entry gate (sizing and risk plugins, as in live).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from gobot.config import Settings, load_plugin_configs
from gobot.errors import GobotError
from gobot.host.hook_caller import HookCaller
from gobot.host.plugin_manager import PluginSet
from gobot.host.strategy_params import check_params, configured_params
from gobot.research.backtest.engine import ExecutionSettings, Gate, SimpleGate, Sizing
from gobot.research.market_data import (
    DataError,
    Series,
    candle_cache_dir,
    data_dir_or_bundled,
    load_series,
    read_markets,
    series_from_file,
)
from gobot_hookspecs import Strategy, StrategyVersion
from gobot_hookspecs.money import quotes


class BacktestSetupError(GobotError):
    """A backtest that cannot start: the message says what to pass or fix."""


def parse_assignments(pairs: Iterable[str]) -> dict[str, str]:
    """``["fast=12", "slow=40"]`` -> ``{"fast": "12", "slow": "40"}``."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise BacktestSetupError(f"--set {pair!r}: write it as name=value, e.g. --set fast=12")
        out[name.strip()] = value.strip()
    return out


@dataclass
class BacktestSetup:
    settings: Settings
    plugin_set: PluginSet
    hooks: HookCaller
    plugin_configs: dict[str, Any]
    strategies: dict[str, Strategy]

    @classmethod
    def build(cls, settings: Settings, plugin_set: PluginSet) -> BacktestSetup:
        plugin_set.raise_for_failures()
        hooks = HookCaller(plugin_set.pm)
        configs = load_plugin_configs(settings, hooks)
        strategies: dict[str, Strategy] = {}

        def register(strategy: Strategy) -> None:
            if strategy.name in strategies:
                raise ValueError(f"strategy '{strategy.name}' is registered twice")
            strategies[strategy.name] = strategy

        hooks.collect_sync("gobot_register_strategies", register=register)
        return cls(settings, plugin_set, hooks, configs, strategies)

    @classmethod
    def load(cls, config_path, enable: Iterable[str], disable: Iterable[str], strategy: str | None,
             risk: str | None, sizing: str | None, *, needs_paper: bool = True, search: bool = False) -> BacktestSetup:
        """The settings of ``config_path`` and the plugins a backtest or (``search``) an optimizer search of
        ``strategy`` needs (a search's default: ``[optimizer] strategy``). One that asks no plugin to size or
        judge its entries (``risk`` none and a sizing other than ``plugins``, given or in ``[backtest]``)
        loads the plugins named by ``-p`` (``enable``), one named like the strategy, ``paper`` when its fee
        or slippage is wanted, and every plugin with a ``[plugins.<name>]`` section (so its config is still
        checked) first, the rest only when the strategy is not among them: importing and configuring the
        others was ~10 % of a first run on a year of 1m. No plugin is listed, so none is explained."""
        from gobot.config import load_settings
        from gobot.host.plugin_manager import build_plugin_set, wanted_plugins

        settings = load_settings(config_path)
        named, enable, disable = set(enable), [*settings.plugins.enable, *enable], [*settings.plugins.disable, *disable]
        name = strategy or (settings.optimizer.strategy if search else None)
        try:
            plugin_free = (risk or settings.backtest.risk) == "none" and Sizing.parse(
                sizing or settings.backtest.sizing).kind != "plugins"
        except ValueError:
            plugin_free = False  # --sizing's error comes with the execution settings
        if name and plugin_free:
            wanted = wanted_plugins(enable, disable)
            few = {*named, name, *settings.plugin_sections, *(["paper"] if needs_paper else [])} & wanted
            setup = cls.build(settings, build_plugin_set(enable, [*disable, *(wanted - few)], explain=False))
            if name in setup.strategies:
                return setup
        return cls.build(settings, build_plugin_set(enable, disable, explain=False))

    # -- the strategy --------------------------------------------------------------------------

    def strategy(self, name: str | None) -> Strategy:
        if not name:
            if len(self.strategies) == 1:
                return next(iter(self.strategies.values()))
            raise BacktestSetupError("pick a strategy with --strategy NAME: "
                                     + (f"registered: {', '.join(sorted(self.strategies))}" if self.strategies else
                                        "no enabled plugin registers one"))
        if name not in self.strategies:
            known = ", ".join(sorted(self.strategies)) or "none"
            raise BacktestSetupError(f"no strategy '{name}' (registered by enabled plugins: {known}); "
                                     f"enable its plugin with -p PLUGIN, e.g. -p {name}")
        return self.strategies[name]

    def params(self, strategy: Strategy, overrides: dict[str, Any] | None = None) -> dict[str, float]:
        params = configured_params(self.settings, strategy)
        params.update(check_params(strategy, overrides or {}, "--set"))
        return params

    # -- the candles ---------------------------------------------------------------------------

    @property
    def cache_dir(self) -> Path:
        """Parsed candle files, kept as binary copies (``market_data.read_csv``)."""
        return candle_cache_dir(self.settings.state_path)

    @property
    def data_dir(self) -> Path:
        configured = self.settings.backtest.data_dir  # no data/ folder here: the bundled demo market
        return data_dir_or_bundled(configured, self.settings.resolve(configured))

    def series(self, data: Iterable[str] = (), timeframe: str | None = None, start_ms: int | None = None,
               end_ms: int | None = None) -> list[Series]:
        """Candles for each ``--data`` item: a CSV file, a folder (every [trading] symbol), or a symbol."""
        default_timeframe = timeframe or self.settings.backtest.timeframe
        items = list(data) or [str(self.data_dir)]
        out: list[Series] = []
        try:
            for item in items:
                path = self.settings.resolve(item) if not Path(item).is_absolute() else Path(item)
                if path.is_file():
                    # a file's own timeframe unless --timeframe asks for coarser candles
                    out.append(series_from_file(path, timeframe=timeframe, start_ms=start_ms, end_ms=end_ms,
                                                cache_dir=self.cache_dir))
                elif path.is_dir():
                    markets = read_markets(path)
                    out.extend(load_series(path, symbol, default_timeframe, start_ms=start_ms, end_ms=end_ms,
                                           markets=markets, cache_dir=self.cache_dir)
                               for symbol in self.settings.trading.symbols)
                elif "/" in item and not item.endswith(".csv"):
                    out.append(load_series(self.data_dir, item, default_timeframe, start_ms=start_ms, end_ms=end_ms,
                                           cache_dir=self.cache_dir))
                else:
                    raise BacktestSetupError(f"--data {item}: no such file or folder, and not a BASE/QUOTE symbol")
        except DataError as exc:
            raise BacktestSetupError(str(exc)) from None
        symbols = [s.symbol for s in out]
        if len(set(symbols)) != len(symbols):
            raise BacktestSetupError(f"the same symbol twice in --data: {', '.join(symbols)}")
        several = quotes(symbols)
        if len(several) > 1:  # the engine's one cash balance converts nothing: its money is the one quote
            raise BacktestSetupError(f"the symbols are quoted in {', '.join(several)}: a backtest counts its money in "
                                     "one currency; test each quote's symbols on their own")
        empty = [s.symbol for s in out if len(s) < 2]
        if empty:
            raise BacktestSetupError(f"fewer than 2 candles for {', '.join(empty)} between --from and --to")
        return out

    # -- the execution rules and the gate --------------------------------------------------------

    def execution(self, **overrides: Any) -> ExecutionSettings:
        """``[backtest]``, with the paper executor's fee and slippage and ``[trading]``'s stops and capital."""
        config, trading = self.settings.backtest, self.settings.trading
        paper = self.plugin_configs.get("paper")
        settings = ExecutionSettings(
            fill=config.fill,
            fee_percent=config.fee_percent if config.fee_percent is not None else getattr(paper, "fee_percent", 0.1),
            slippage_percent=(config.slippage_percent if config.slippage_percent is not None
                              else getattr(paper, "slippage_percent", 0.05)),
            stop_loss_percent=trading.stop_loss_percent,
            take_profit_percent=trading.take_profit_percent,
            start_equity=config.start_equity_usd or trading.initial_capital_usd,
            sizing=Sizing.parse(config.sizing),
            risk=config.risk,
            allow_short=config.allow_short,
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not ...})

    def gate(self, execution: ExecutionSettings, strategy: Strategy, version: StrategyVersion | None = None) -> Gate:
        """The entry gate: plugins when sizing or risk asks for them, else the plugin-free fast gate."""
        if execution.sizing.kind != "plugins" and execution.risk == "none":
            return SimpleGate(execution.sizing)
        from gobot.research.backtest.gate import BacktestContext, PluginGate

        version = version or StrategyVersion(name=strategy.name, params=self.params(strategy))
        ctx = BacktestContext(self.settings, self.plugin_configs, self.strategies, version)
        return PluginGate(self.hooks, ctx, execution.sizing, execution.risk, strategy.name, version.version,
                          stop_loss_percent=execution.stop_loss_percent,
                          take_profit_percent=execution.take_profit_percent)
