"""The JDBC drivers the runtime ships (corral/runtime/maven/pom.xml), by URL dialect: one
place for the Hive metastore's and the data transfers' connection settings."""

from __future__ import annotations

DRIVERS = {"postgresql": "org.postgresql.Driver", "mysql": "org.mariadb.jdbc.Driver", "mariadb": "org.mariadb.jdbc.Driver"}


def dialect(url: str) -> str:
    """``jdbc:postgresql://...`` -> ``postgresql``."""
    return url.split(":", 2)[1]


def is_mysql(url: str) -> bool:
    """MySQL or MariaDB: one dialect to the shipped driver and to Hive's metastore."""
    return dialect(url) in ("mysql", "mariadb")


def driver_class(url: str) -> str:
    return DRIVERS[dialect(url)]


def driver_url(url: str) -> str:
    """The URL as the shipped driver takes it: MariaDB Connector/J serves jdbc:mysql:// URLs
    only when told to."""
    if dialect(url) == "mysql":
        return url + ("&" if "?" in url else "?") + "permitMysqlScheme"
    return url
