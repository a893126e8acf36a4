"""gobot's plugin contract: the ``hookimpl`` marker, the hook specifications and the data models.

Everything a plugin author needs is importable from here::

    from gobot_hookspecs import hookimpl, Signal, Action

It depends on pluggy and pydantic only. Shared helpers live in modules of their own, imported
where needed: ``candles`` (timeframes, the replay CSV files), ``indicators``, ``redact`` (masking
secrets), ``metrics``, ``files`` and ``sentiment`` (recorded sentiment readings).
"""

from . import specs
from .components import BotContext, Clock, ConfigView, RateLimitPolicy, Strategy, VectorizedStrategy
from .markers import PROJECT_NAME, hookimpl, hookspec
from .models import (
    ALERT_KINDS,
    DRIFT_PARTS,
    Action,
    AdjustmentDecision,
    Alert,
    AlertKind,
    BacktestResult,
    CandleDownload,
    Candles,
    ChartImage,
    CycleReport,
    DriftMeasurement,
    ExecutionError,
    ExecutionFailed,
    Fill,
    Funding,
    Learning,
    MarketSnapshot,
    MetricSample,
    Order,
    OrderIntent,
    ParamSpec,
    PhaseRecord,
    PluginStatus,
    Position,
    Priority,
    RateLimit,
    RiskCounter,
    RiskStatus,
    RiskVerdict,
    Sentiment,
    Severity,
    Side,
    Signal,
    StoryFill,
    StorySignal,
    StoryVerdict,
    StrategyProposal,
    StrategyVersion,
    Trade,
    TradeStory,
    ValidationResult,
)
from .plugin_config import PluginConfig

#: Version of the hook contract. A plugin declares the range it supports (see docs/plugins.md).
CONTRACT_VERSION = "1.4"

__all__ = [
    "ALERT_KINDS",
    "CONTRACT_VERSION",
    "DRIFT_PARTS",
    "PROJECT_NAME",
    "Action",
    "AdjustmentDecision",
    "Alert",
    "AlertKind",
    "BacktestResult",
    "BotContext",
    "CandleDownload",
    "Candles",
    "ChartImage",
    "Clock",
    "ConfigView",
    "CycleReport",
    "DriftMeasurement",
    "ExecutionError",
    "ExecutionFailed",
    "Fill",
    "Funding",
    "Learning",
    "MarketSnapshot",
    "MetricSample",
    "Order",
    "OrderIntent",
    "ParamSpec",
    "PhaseRecord",
    "PluginConfig",
    "PluginStatus",
    "Position",
    "Priority",
    "RateLimit",
    "RateLimitPolicy",
    "RiskCounter",
    "RiskStatus",
    "RiskVerdict",
    "Sentiment",
    "Severity",
    "Side",
    "Signal",
    "Strategy",
    "StoryFill",
    "StorySignal",
    "StoryVerdict",
    "StrategyProposal",
    "StrategyVersion",
    "Trade",
    "TradeStory",
    "ValidationResult",
    "VectorizedStrategy",
    "hookimpl",
    "hookspec",
    "specs",
]
