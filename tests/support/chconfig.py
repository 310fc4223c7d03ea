"""Load the ClickHouse config tree the builders render into the ClickHouse engine (chDB).

What a pod sees is derived from the rendered objects, not restated: the StatefulSet's
``--config-file`` argument, its ``volumeMounts`` and ``volumes`` (ConfigMaps, projected
ConfigMaps, their ``items``) and the ConfigMaps' data. The files are laid out under a
temporary directory standing for the pod's ``/`` and the engine loads them as the
server does: ``config.xml`` plus every file of ``config.d``, the users file plus every
file of ``users.d`` (ClickHouse's ``ConfigProcessor``, the same code in chDB).

``config.xml`` and ``users.xml`` of ``/etc/clickhouse-server`` come from the
clickhouse-server image, not from us; ``IMAGE_CONFIG_XML`` and ``IMAGE_USERS_XML`` are
the ClickHouse stand-in image's files in their place (``images/clickhouse-standin/etc``),
with what our files rely on (the ``users_xml`` user directory next to
config.xml, the ``default`` profile and quota, the password-less ``default`` user).

Each load runs in its own Python process: chDB starts one engine per process and never
a second one. A load costs about 0.5 s (interpreter, chDB import, engine start). The rendered
``<path>`` (``/var/lib/clickhouse``, the pod's data volume) is used as is: each process
runs in its own mount namespace (``unshare --map-root-user --mount``, no root needed)
with the tree's ``var/lib`` bound over ``/var/lib``.

The Keeper config (``keeper_server.xml``, one file, mounted whole) loads the same way
(``load_keeper``): chDB reads it as a server config and starts no Keeper. Every child
runs in a network namespace of its own with only loopback in it, so resolving a cluster DNS
name never sends a packet off this machine.

How chDB differs from a server, and what follows:

- it opens no listener, so ``listen_host``, ports and ``interserver_http_host`` are
  parsed (a non-integer ``tcp_port`` fails the start) but nothing binds;
- ``remote_servers`` hosts and Keeper nodes are only resolved when a query needs them,
  so the cluster DNS names of a real namespace load fine and show in ``system.clusters``
  (``is_local`` is 0: no host here has those names);
- every query runs as the user ``default`` (chDB's ``LocalConnection`` authenticates
  ``default`` with an empty password, and ``EXECUTE AS`` needs
  ``access_control_improvements.allow_impersonate_user``, which chDB's local server never
  reads). ``as_user`` therefore loads the tree with a copy of the rendered user's own XML
  element (its grants, profile, quota, networks) in the place of ``default``, password
  emptied: the engine then enforces exactly that user's rights on every query. The
  element is copied from the rendered file, never written here.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tenantry_operator import builders
from tenantry_operator import model as m

# The image's /etc/clickhouse-server/config.xml and users.xml: the files the ClickHouse
# stand-in image ships in their place (only what our files rely on), read from there.
IMAGE_ETC = Path(__file__).resolve().parents[2] / "images" / "clickhouse-standin" / "etc"
IMAGE_CONFIG_XML = (IMAGE_ETC / "config.xml").read_text()
IMAGE_USERS_XML = (IMAGE_ETC / "users.xml").read_text()
IMAGE_FILES = {
    "/etc/clickhouse-server/config.xml": IMAGE_CONFIG_XML,
    "/etc/clickhouse-server/users.xml": IMAGE_USERS_XML,
}
CONTAINER = "clickhouse"
LOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PodFiles:
    """What the ClickHouse container of one host sees: files by absolute path."""

    files: dict[str, str]
    config_file: str
    data_dir: str
    env_names: tuple[str, ...]


def _by_kind_name(objects: Sequence[Mapping[str, Any]], kind: str) -> dict[str, Any]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _config_map_files(
    config_map: Mapping[str, Any], items: Sequence[Mapping[str, str]] | None
) -> dict[str, str]:
    data: dict[str, str] = config_map.get("data", {})
    if items is None:
        return dict(data)
    return {item["path"]: data[item["key"]] for item in items}


def pod_files(objects: Sequence[Mapping[str, Any]], host: m.Host) -> PodFiles:
    """The host's files as its pod mounts them, from the rendered objects alone."""
    config_maps = _by_kind_name(objects, "ConfigMap")
    statefulset = _by_kind_name(objects, "StatefulSet")[host.name]
    pod = statefulset["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == CONTAINER)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in statefulset["spec"].get("volumeClaimTemplates", [])}
    args = [*container.get("command", []), *container.get("args", [])]
    config_file = next(a.split("=", 1)[1] for a in args if a.startswith("--config-file="))

    files: dict[str, str] = {}
    data_dir = ""
    for mount in container.get("volumeMounts", []):
        base = PurePosixPath(mount["mountPath"])
        if mount["name"] in claims:
            if mount["mountPath"].rstrip("/") == "/var/lib/clickhouse":
                data_dir = mount["mountPath"]
            continue
        volume = volumes[mount["name"]]
        sources: list[tuple[str, list[dict[str, str]] | None]] = []
        if "configMap" in volume:
            sources.append((volume["configMap"]["name"], volume["configMap"].get("items")))
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                sources.append((source["configMap"]["name"], source["configMap"].get("items")))
        for name, items in sources:
            for path, text in _config_map_files(config_maps[name], items).items():
                files[str(base / path)] = text
    for path, text in IMAGE_FILES.items():
        if path in files:
            raise AssertionError(f"{path} is mounted over the image's own file")
        files[path] = text
    if not data_dir:
        raise AssertionError("no volume claim is mounted at /var/lib/clickhouse")
    env_names = tuple(e["name"] for e in container.get("env", []))
    return PodFiles(files=files, config_file=config_file, data_dir=data_dir, env_names=env_names)


def host_files(model: m.TenantModel, host: m.Host) -> PodFiles:
    return pod_files(builders.build(model), host)


def lay_out(pod: PodFiles, root: Path) -> Path:
    """Write the files under ``root`` (the pod's ``/``); returns the config file's path."""
    for path, text in pod.files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (root / pod.data_dir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return root / pod.config_file.lstrip("/")


# -- as another user -------------------------------------------------------------------


def users_file(pod: PodFiles) -> str:
    """The path of the rendered file that defines the users (in users.d)."""
    found = [p for p, text in pod.files.items() if "/users.d/" in p and "<users>" in text]
    if len(found) != 1:
        raise AssertionError(f"expected one users file in users.d, found {found}")
    return found[0]


def as_user(pod: PodFiles, user: str) -> PodFiles:
    """The same tree, with a copy of the rendered ``user`` in the place of ``default``.

    The image's and the rendered ``default`` are removed; a copy of ``user``'s element
    named ``default`` takes their place, with an empty password and everything else
    (grants, profile, quota, networks, access_management) as rendered. The rendered
    ``user`` itself stays, so ``system.users`` and ``system.grants`` still show it."""
    path = users_file(pod)
    tree = ET.fromstring(pod.files[path])  # noqa: S314 - our own rendered file
    users = tree.find("users")
    assert users is not None
    element = users.find(user)
    if element is None:
        raise AssertionError(f"user {user!r} is not in the rendered users file")
    for old in users.findall("default"):
        users.remove(old)
    stand_in = copy.deepcopy(element)
    stand_in.tag = "default"
    for password in stand_in.findall("password"):
        stand_in.remove(password)
    ET.SubElement(stand_in, "password")
    users.append(stand_in)
    files = dict(pod.files)
    files[path] = ET.tostring(tree, encoding="unicode")
    image_users = ET.fromstring(files["/etc/clickhouse-server/users.xml"])  # noqa: S314 - ours
    image_user_list = image_users.find("users")
    assert image_user_list is not None
    for old in image_user_list.findall("default"):
        image_user_list.remove(old)
    files["/etc/clickhouse-server/users.xml"] = ET.tostring(image_users, encoding="unicode")
    return PodFiles(
        files=files, config_file=pod.config_file, data_dir=pod.data_dir, env_names=pod.env_names
    )


def _hosts_file(root: Path, names: Sequence[str]) -> str:
    if not names:
        return ""
    path = root / "etc-hosts"
    path.write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {n}\n" for n in names))
    return str(path)


# -- loading ---------------------------------------------------------------------------

_CHILD = r"""
import json, sys
import chdb
spec = json.loads(sys.stdin.read())
out = {"started": False, "error": None, "results": []}
try:
    conn = chdb.connect(spec["data_dir"] + "?config-file=" + spec["config_file"])
except Exception as exc:
    out["error"] = str(exc)
    print(json.dumps(out))
    sys.exit(0)
out["started"] = True
cur = conn.cursor()
for sql in spec["queries"]:
    try:
        cur.execute(sql)
        rows = cur.fetchall()
        out["results"].append({"ok": True, "rows": [list(r) for r in rows]})
    except Exception as exc:
        out["results"].append({"ok": False, "error": str(exc)})
conn.close()
print(json.dumps(out, default=str))
"""


@dataclass(frozen=True)
class Result:
    ok: bool
    rows: list[list[Any]]
    error: str

    def error_name(self) -> str:
        """The ClickHouse error name in parentheses at the end, e.g. ``ACCESS_DENIED``."""
        tail = self.error.rstrip().rstrip(".")
        return tail[tail.rfind("(") + 1 : -1] if tail.endswith(")") else ""


@dataclass(frozen=True)
class Load:
    started: bool
    error: str
    stderr: str
    results: list[Result]

    def rows(self, index: int) -> list[list[Any]]:
        result = self.results[index]
        assert result.ok, result.error
        return result.rows


def _run_engine(
    *,
    config_file: str,
    data_dir: str,
    data_parent: tuple[Path, str],
    hosts_file: str,
    env: Mapping[str, str],
    queries: Sequence[str],
) -> subprocess.CompletedProcess[str]:
    """Run the engine in a child process on ``config_file`` with ``env``.

    The rendered configs keep their data under ``/var/lib/...`` (the pod's volume): the
    child runs in its own mount namespace with the tree's folder (``data_parent[0]``)
    bound at ``data_parent[1]``, so the config is loaded unchanged and nothing is
    written to this machine's /var/lib. The child also gets a network namespace of its
    own with only its loopback up: the rendered ``remote_servers`` and Keeper hosts are cluster
    DNS names, and a query that resolves them (``system.clusters``) must never send a DNS
    question off this machine (the network rule); there they fail at once, and names in
    ``hosts_file`` resolve from it."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKHOUSE_")}
    child_env.update(env)
    spec = {"config_file": config_file, "data_dir": data_dir, "queries": list(queries)}
    command = [
        "unshare",
        "--map-root-user",
        "--mount",
        "--net",
        "sh",
        "-c",
        'ip link set lo up && mount --bind "$1" "$2"'
        ' && { [ -z "$3" ] || mount --bind "$3" /etc/hosts; }'
        ' && shift 3 && exec "$@"',
        "sh",
        str(data_parent[0]),
        data_parent[1],
        hosts_file,
        sys.executable,
        "-c",
        _CHILD,
    ]
    return subprocess.run(
        command,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=child_env,
        timeout=LOAD_TIMEOUT_S,
        check=False,
    )


def load(
    pod: PodFiles,
    root: Path,
    *,
    env: Mapping[str, str],
    queries: Sequence[str] = (),
    local_hosts: Sequence[str] = (),
) -> Load:
    """Start the engine on the laid-out tree in a fresh process with ``env`` (the
    container's env, e.g. the passwords ``from_env`` reads) and run ``queries``.

    ``local_hosts``: names that resolve to 127.0.0.1 in the child (an /etc/hosts of its
    own, bound in its mount namespace), so the engine takes those ``remote_servers``
    replicas for itself, as a server does for its own name."""
    config = lay_out(pod, root)
    data_parent = str(PurePosixPath(pod.data_dir).parent)
    done = _run_engine(
        config_file=str(config),
        data_dir=pod.data_dir,
        data_parent=(root / data_parent.lstrip("/"), data_parent),
        hosts_file=_hosts_file(root, local_hosts),
        env=env,
        queries=queries,
    )
    return _loaded(done)


def _loaded(done: subprocess.CompletedProcess[str]) -> Load:
    if done.returncode != 0 or not done.stdout.strip():
        return Load(False, f"exit {done.returncode}", done.stderr, [])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    results = [Result(r["ok"], r.get("rows", []), r.get("error", "") or "") for r in out["results"]]
    error = out["error"] or ""
    if not out["started"]:
        # chDB's exception names only "Error initializing EmbeddedServer"; the engine
        # printed the reason (file, element, value) on stderr just before.
        reasons = [line for line in done.stderr.splitlines() if "DB::Exception" in line]
        error = "\n".join([*reasons[:3], error])
    return Load(out["started"], error, done.stderr, results)


# -- Keeper ----------------------------------------------------------------------------

KEEPER_CONTAINER = "keeper"
KEEPER_DATA_DIR = "/var/lib/clickhouse-keeper"


def keeper_files(objects: Sequence[Mapping[str, Any]]) -> tuple[dict[str, str], str]:
    """The Keeper container's files by absolute path (its ConfigMap volume, whole) and
    the ``--config-file`` its command starts with, from the rendered objects alone."""
    config_maps = _by_kind_name(objects, "ConfigMap")
    pod = _by_kind_name(objects, "StatefulSet")["keeper"]["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == KEEPER_CONTAINER)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        if "configMap" in volume:
            found = config_maps[volume["configMap"]["name"]]
            for path, text in _config_map_files(found, volume["configMap"].get("items")).items():
                files[str(PurePosixPath(mount["mountPath"]) / path)] = text
    command = " ".join([*container.get("command", []), *container.get("args", [])])
    config_file = command.split("--config-file=", 1)[1].split()[0]
    return files, config_file


def load_keeper(
    objects: Sequence[Mapping[str, Any]],
    root: Path,
    *,
    env: Mapping[str, str],
    queries: Sequence[str] = (),
) -> Load:
    """Start the engine on the Keeper config the pod mounts (chDB reads it as a server
    config and starts no Keeper), in its own mount and network namespaces."""
    files, config_file = keeper_files(objects)
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (root / KEEPER_DATA_DIR.lstrip("/")).mkdir(parents=True, exist_ok=True)
    data_parent = str(PurePosixPath(KEEPER_DATA_DIR).parent)
    done = _run_engine(
        config_file=str(root / config_file.lstrip("/")),
        data_dir=KEEPER_DATA_DIR,
        data_parent=(root / data_parent.lstrip("/"), data_parent),
        hosts_file="",
        env=env,
        queries=queries,
    )
    return _loaded(done)
