"""Reading a ClickHouse (or Keeper) config tree as ClickHouse's ConfigProcessor does:
the main file with ``<stem>.d/*.xml`` and ``conf.d/*.xml`` merged in name order
(``replace``/``remove`` attributes), then ``from_env`` substituted. Standard library only:
both stand-in images use it (the Keeper image has no chDB).
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path

logger = logging.getLogger("standins.config")


class ConfigError(Exception):
    """The config tree cannot start a server; the message names the file or element."""


def _parse(path: Path) -> ET.Element:
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - the pod's own config files
    except ET.ParseError as exc:
        raise ConfigError(f"{path}: not well-formed XML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return root


def _merge(into: ET.Element, other: ET.Element) -> None:
    """Merge `other` into `into` as ClickHouse merges a config.d file: the k-th child of
    a name merges into the k-th child of that name (recursively; a leaf's text is
    replaced), ``replace`` swaps the element, ``remove`` deletes it, others are added."""
    used: dict[str, int] = {}
    for child in list(other):
        if not isinstance(child.tag, str):
            continue
        same = [c for c in into if c.tag == child.tag]
        index = used.get(child.tag, 0)
        target = same[index] if index < len(same) else None
        used[child.tag] = index + 1
        if "remove" in child.attrib:
            if target is not None:
                into.remove(target)
            continue
        copy = ET.fromstring(ET.tostring(child))  # noqa: S314 - our own element
        if target is None:
            into.append(copy)
        elif "replace" in child.attrib or (len(child) == 0 and len(target) == 0):
            into.insert(list(into).index(target), copy)
            into.remove(target)
        else:
            target.attrib.update(child.attrib)
            if (child.text or "").strip():
                target.text = child.text
            _merge(target, child)


def _substitute(element: ET.Element) -> None:
    """``from_env`` attributes become the variable's value (empty when it is unset, as
    ClickHouse does; logged, since a password read that way is then empty)."""
    for node in element.iter():
        name = node.attrib.get("from_env")
        if name is not None:
            if name not in os.environ:
                logger.warning("%s: environment variable %s is not set", node.tag, name)
            node.text = os.environ.get(name, "")
        if "from_zk" in node.attrib:
            raise ConfigError(f"<{node.tag} from_zk=...>: the stand-in reads no Keeper")


def merged(config_file: Path) -> ET.Element:
    """``config_file`` with ``<stem>.d/*.xml`` and ``conf.d/*.xml`` merged, as a server
    reads it (files in name order, YAML files refused)."""
    root = _parse(config_file)
    for folder in (config_file.with_suffix(".d"), config_file.parent / "conf.d"):
        if not folder.is_dir():
            continue
        for extra in sorted(folder.iterdir()):
            if extra.suffix in (".yaml", ".yml"):
                raise ConfigError(f"{extra}: YAML config files are not supported by the stand-in")
            if extra.suffix == ".xml" and extra.is_file():
                _merge(root, _parse(extra))
    _substitute(root)
    return root
