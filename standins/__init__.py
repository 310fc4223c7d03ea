"""Stand-ins for servers that cannot be installed on these machines, in images of their own.

NOT the production path: production keeps the official clickhouse-server and
clickhouse-keeper images. These stand in for them on a local cluster with real nodes,
where no image can be pulled (issue 13):

- ``clickhouse``: the ClickHouse stand-in server, the ClickHouse engine (chDB) started
  from a pod's mounted config tree as clickhouse-server is, serving ClickHouse's HTTP
  interface (``clickhouse_http``) with the tree's users and their profiles;
- ``keeper``: the Keeper stand-in, Apache ZooKeeper (Debian's) configured from the
  rendered ``keeper_server.xml``.

Outside the runtime package and image: not in the wheel (pyproject.toml), and import-linter
forbids any runtime package to import it; it imports nothing of the project itself, so
its images hold only Debian's Python, chDB and this package (``images/``).
"""
