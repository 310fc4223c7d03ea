"""The ClickHouse server settings a Tenant may set (``spec.clickhouse.settings``).

An allow-list, each setting with a typed value and bounds. Each setting becomes an
element of the host's server config, so a free key could override what the operator
owns: where data lives (``path``, ``tmp_path``, ``storage_configuration``), what the
server listens on (``listen_host``, ``http_port``), who may log in (``users``,
``user_directories``), Keeper and the cluster layout (``zookeeper``, ``remote_servers``,
``macros``), or pull in other files (``include_from``). A deny-list of those would have
to name every such key of every ClickHouse version to come, so only the tuning
settings below are accepted; the rest of the server config is the operator's.

The same table gives the CRD's CEL rules (``tenantry.api.tenant``), the pydantic check
the control plane and the operator run, and the field's documentation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_TIB = 1024**4


@dataclass(frozen=True)
class Setting:
    kind: str  # "count", "seconds", "bytes", "ratio" or "text"
    low: int = 0
    high: int = 0
    pattern: str = ""  # kind "text" only

    def describe(self) -> str:
        if self.kind == "ratio":
            return "a ratio above 0, at most 1"
        if self.kind == "text":
            return "up to 64 letters, digits, spaces, '.', '_' or '-'"
        unit = {"count": "", "seconds": " seconds", "bytes": " bytes"}[self.kind]
        return f"a whole number from {self.low} to {self.high}{unit}"


_COUNT = 100_000
_POOL = 1024
ALLOWED: dict[str, Setting] = {
    "max_concurrent_queries": Setting("count", 0, _COUNT),
    "max_concurrent_insert_queries": Setting("count", 0, _COUNT),
    "max_concurrent_select_queries": Setting("count", 0, _COUNT),
    "max_connections": Setting("count", 1, _COUNT),
    "max_thread_pool_size": Setting("count", 1, _COUNT),
    "concurrent_threads_soft_limit_num": Setting("count", 0, _COUNT),
    "concurrent_threads_soft_limit_ratio_to_cores": Setting("count", 0, 1000),
    "background_pool_size": Setting("count", 1, _POOL),
    "background_schedule_pool_size": Setting("count", 1, _POOL),
    "background_fetches_pool_size": Setting("count", 1, _POOL),
    "background_move_pool_size": Setting("count", 1, _POOL),
    "background_common_pool_size": Setting("count", 1, _POOL),
    "async_insert_threads": Setting("count", 1, _POOL),
    "keep_alive_timeout": Setting("seconds", 1, 3600),
    "default_session_timeout": Setting("seconds", 1, 86400),
    "max_session_timeout": Setting("seconds", 1, 86400),
    "max_server_memory_usage": Setting("bytes", 0, 2 * _TIB),
    "mark_cache_size": Setting("bytes", 0, 2 * _TIB),
    "uncompressed_cache_size": Setting("bytes", 0, 2 * _TIB),
    "index_mark_cache_size": Setting("bytes", 0, 2 * _TIB),
    "index_uncompressed_cache_size": Setting("bytes", 0, 2 * _TIB),
    "max_table_size_to_drop": Setting("bytes", 0, 10**18),
    "max_partition_size_to_drop": Setting("bytes", 0, 10**18),
    "max_server_memory_usage_to_ram_ratio": Setting("ratio"),
    "cache_size_to_ram_max_ratio": Setting("ratio"),
    "display_name": Setting("text", pattern=r"^[A-Za-z0-9 ._-]{1,64}$"),
}
WHOLE_PATTERN = r"^[0-9]{1,18}$"
RATIO_PATTERN = r"^(0|1)([.][0-9]{1,4})?$"
OWNED = (
    "paths, listeners and ports, users and access, storage, Keeper, cluster layout and "
    "included files are the operator's"
)


def _names() -> str:
    return ", ".join(sorted(ALLOWED))


def not_allowed(name: str) -> str:
    return f"setting {name} cannot be set: only these server settings may be ({OWNED}): {_names()}"


def check_value(name: str, value: str) -> None:
    """ValueError unless ``value`` suits the allowed setting ``name``."""
    setting = ALLOWED[name]
    bad = ValueError(f"setting {name} must be {setting.describe()}; got {value!r}")
    if setting.kind == "text":
        if not re.fullmatch(setting.pattern, value):
            raise bad
    elif setting.kind == "ratio":
        if not re.fullmatch(RATIO_PATTERN, value):
            raise bad
        try:
            ratio = Decimal(value)
        except InvalidOperation as err:
            raise bad from err
        if not Decimal(0) < ratio <= Decimal(1):
            raise bad
    elif not re.fullmatch(WHOLE_PATTERN, value) or not setting.low <= int(value) <= setting.high:
        raise bad


def check(settings: dict[str, str]) -> dict[str, str]:
    """``settings`` when every key is allowed and every value suits it; else ValueError."""
    for name, value in settings.items():
        if name not in ALLOWED:
            raise ValueError(not_allowed(name))
        check_value(name, value)
    return settings


def description() -> str:
    """The documentation of ``spec.clickhouse.settings`` (the CRD field's description)."""
    kinds = {
        "count": "whole numbers",
        "seconds": "whole seconds",
        "bytes": "whole bytes",
        "ratio": "ratios above 0, at most 1",
        "text": "text",
    }
    groups = []
    for kind, label in kinds.items():
        names = [n for n, s in ALLOWED.items() if s.kind == kind]
        groups.append(f"{label}: " + ", ".join(names))
    return (
        "ClickHouse server settings written into each host's config (name -> value as a "
        'string), e.g. max_concurrent_queries: "200". Changing them rolls the hosts. '
        "Only these settings are accepted, each with a typed value ("
        + "; ".join(groups)
        + f"). Any other key is refused: {OWNED} "
        "(path, tmp_path, storage_configuration, listen_host, http_port, users, "
        "user_directories, zookeeper, remote_servers, macros, include_from, ...)."
    )
