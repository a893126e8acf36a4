"""gobot's plugin contract: the ``hookimpl`` marker, the hook specifications and the data models.

Everything a plugin author needs is importable from here::

    from gobot_hookspecs import hookimpl, Signal, Action

It depends on pluggy and pydantic only.
"""

from . import specs
from .components import BotContext, Clock, RateLimitPolicy, Strategy
from .markers import PROJECT_NAME, hookimpl, hookspec
from .models import (
    Action,
    AdjustmentDecision,
    Alert,
    BacktestResult,
    Candles,
    CycleReport,
    ExecutionError,
    Fill,
    Learning,
    MarketSnapshot,
    Order,
    OrderIntent,
    ParamSpec,
    PhaseRecord,
    Position,
    Priority,
    RiskVerdict,
    Severity,
    Side,
    Signal,
    StrategyVersion,
    Trade,
    ValidationResult,
)

#: Version of the hook contract. A plugin declares the range it supports (see docs/plugins.md).
CONTRACT_VERSION = "1.0"

__all__ = [
    "CONTRACT_VERSION",
    "PROJECT_NAME",
    "Action",
    "AdjustmentDecision",
    "Alert",
    "BacktestResult",
    "BotContext",
    "Candles",
    "Clock",
    "CycleReport",
    "ExecutionError",
    "Fill",
    "Learning",
    "MarketSnapshot",
    "Order",
    "OrderIntent",
    "ParamSpec",
    "PhaseRecord",
    "Position",
    "Priority",
    "RateLimitPolicy",
    "RiskVerdict",
    "Severity",
    "Side",
    "Signal",
    "Strategy",
    "StrategyVersion",
    "Trade",
    "ValidationResult",
    "hookimpl",
    "hookspec",
    "specs",
]
