"""DATA_IMPORT and DATA_EXPORT steps: move data between the cluster (HDFS, Hive tables) and
object storage (s3a://) or a relational database (JDBC), as steps with logs, cancel and
ActionOnFailure.

A transfer is written as options, the same in the CLI, the REST body and the step's args::

    --from s3a://bucket/sales/ --to hive:sales --format csv --mode overwrite
    --from jdbc:postgresql://db:5432/shop --table orders --user etl --to hive:orders \\
        --partition-column id --num-partitions 8
    --from hive:region_totals --to jdbc:postgresql://db:5432/shop --table region_totals --user etl

Locations: ``s3a://`` (or ``s3://``), ``hdfs://...`` or an absolute HDFS path (the forms of
``corral.domain.locations``), ``hive:[db.]table``, ``jdbc:postgresql://``, ``jdbc:mysql://``,
``jdbc:mariadb://``; table and column names follow ``corral.domain.sql_names``' exact-name
rule. Object storage <-> HDFS is a DistCp copy; everything else is a Spark job
(``transfer_spark``). The database password is never an argument: it reaches the step as
the secret environment variable PASSWORD_ENV.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from enum import Enum

from corral.domain.locations import FileLocation, is_file_location, parse_location
from corral.domain.sql_names import Name, check_for, parse_name, sql_dialect
from corral.errors import FieldError
from corral.jobs.base import Command, LocalFile, StepKindBase

PASSWORD_ENV = "CORRAL_JDBC_PASSWORD"
REPORT_ENV = "CORRAL_TRANSFER_REPORT"  # where the Spark job leaves its one-line failure reason
FORMATS = ("csv", "json", "parquet")
MODES = ("error", "append", "overwrite")
OBJECT_STORAGE = "object_storage"  # a requirement that is not a service: the spec's object store


class Kind(str, Enum):
    S3 = "object storage"
    HDFS = "HDFS path"
    HIVE = "Hive table"
    JDBC = "database"


def kind_of(location: str) -> Kind | None:
    if location.startswith(("s3a:", "s3:")):
        return Kind.S3
    if is_file_location(location):
        return Kind.HDFS
    if location.startswith("hive:"):
        return Kind.HIVE
    if location.startswith(("jdbc:postgresql://", "jdbc:mysql://", "jdbc:mariadb://")):
        return Kind.JDBC
    return None


def normalize(location: str) -> str:
    """A file location in its one normal form (``corral.domain.locations``); others as given."""
    if not is_file_location(location):
        return location
    try:
        return parse_location(location).uri
    except ValueError:
        return location  # parse() reports it


DIRECTIONS = {
    "import": ({Kind.S3, Kind.JDBC}, {Kind.HIVE, Kind.HDFS}),
    "export": ({Kind.HIVE, Kind.HDFS}, {Kind.S3, Kind.JDBC}),
}


def staging_path(target: str, step_id: str) -> str:
    """Where a step stages files before its commit (``FileLocation.staging``), as a URI."""
    return parse_location(target).staging(step_id).uri


class FileCommit(Enum):
    """How staged files are put in place; DistCp (``hadoop fs``) and Spark (the FileSystem
    API) both follow it. A rename is atomic on HDFS and a server-side copy on S3."""

    RENAME = "rename"  # no target yet: make its parent, rename the staging directory onto it
    REPLACE = "replace"  # overwrite: delete the target, then rename
    MOVE_INTO = "move_into"  # append, or a root: move each staged file into it (name clashes fail)

    @classmethod
    def of(cls, target_exists: bool, mode: str, is_root: bool = False) -> "FileCommit":
        """``target_exists``: for a root (which always exists), whether it holds anything."""
        if is_root:
            return cls.MOVE_INTO  # a root cannot be renamed onto or deleted
        if not target_exists:
            return cls.RENAME
        return cls.REPLACE if mode == "overwrite" else cls.MOVE_INTO


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="transfer", add_help=False, allow_abbrev=False)
    p.add_argument("--from", dest="source", required=True)
    p.add_argument("--to", dest="target", required=True)
    p.add_argument("--format", choices=FORMATS, default=None)
    p.add_argument("--mode", choices=MODES, default="error")
    p.add_argument("--table")
    p.add_argument("--query")
    p.add_argument("--user")
    p.add_argument("--partition-column")
    p.add_argument("--num-partitions", type=int)
    p.add_argument("--lower-bound", type=int)
    p.add_argument("--upper-bound", type=int)
    p.add_argument("--header", choices=("true", "false"), default="true")
    p.add_argument("--delimiter", default=",")
    p.add_argument("--schema")
    return p


@dataclass(frozen=True)
class Transfer:
    direction: str
    source: str
    target: str
    format: str | None
    mode: str
    table: str | None
    query: str | None
    user: str | None
    partition_column: str | None
    num_partitions: int | None
    lower_bound: int | None
    upper_bound: int | None
    header: str
    delimiter: str
    schema: str | None

    @property
    def source_kind(self) -> Kind:
        return kind_of(self.source)  # type: ignore[return-value]

    @property
    def target_kind(self) -> Kind:
        return kind_of(self.target)  # type: ignore[return-value]

    @property
    def source_files(self) -> FileLocation:
        """The source as a file location (for an s3a:// or HDFS source)."""
        return parse_location(self.source)

    @property
    def target_files(self) -> FileLocation:
        return parse_location(self.target)

    @property
    def source_hive(self) -> Name:
        """``hive:db.t`` -> Name(('db', 't')) (for a Hive source)."""
        return parse_name(self.source[len("hive:"):])

    @property
    def target_hive(self) -> Name:
        return parse_name(self.target[len("hive:"):])

    @property
    def table_name(self) -> Name:
        """``--table`` (a database transfer's table)."""
        return parse_name(self.table or "")

    @property
    def partition_name(self) -> str:
        """``--partition-column``, the column's exact name."""
        return parse_name(self.partition_column or "", max_parts=1).object

    @property
    def is_copy(self) -> bool:
        """Object storage <-> HDFS as files, byte for byte: DistCp."""
        return {self.source_kind, self.target_kind} == {Kind.S3, Kind.HDFS} and self.format is None

    def requirements(self) -> tuple[str, ...]:
        needs: list[str] = ["mapreduce"] if self.is_copy else ["spark"]
        kinds = {self.source_kind, self.target_kind}
        if Kind.HIVE in kinds:
            needs.append("hive")
        if Kind.HDFS in kinds:
            needs.append("hdfs")
        if Kind.S3 in kinds:
            needs.append(OBJECT_STORAGE)
        return tuple(needs)


def parse(direction: str, args: list[str]) -> Transfer:
    """The transfer ``args`` describe; ValueError with a readable reason when they do not."""
    ns = parser().parse_args(args)
    t = Transfer(direction=direction, **{**vars(ns), "source": normalize(ns.source), "target": normalize(ns.target)})
    sources, targets = DIRECTIONS[direction]
    for where, location, allowed in (("--from", t.source, sources), ("--to", t.target, targets)):
        kind = kind_of(location)
        if kind is None:
            raise ValueError(f"{where} {location!r}: not a location (s3a://, hdfs:// or /path, hive:table, jdbc:...)")
        if kind not in allowed:
            names = " or ".join(sorted(k.value for k in allowed))
            raise ValueError(f"{where} {location!r}: a data {direction} goes {'from' if where == '--from' else 'to'} "
                             f"{names}, not a {kind.value}")
        if kind in (Kind.S3, Kind.HDFS):
            try:
                parse_location(location)
            except ValueError as exc:
                raise ValueError(f"{where} {exc}") from None
        if kind is Kind.HIVE:
            try:
                check_for(parse_name(location[len("hive:"):]), "spark")
            except ValueError as exc:
                raise ValueError(f"{where} {location!r}: expected hive:table or hive:database.table: {exc}") from None
    if t.target_kind in (Kind.S3, Kind.HDFS) and t.mode == "overwrite" and t.target_files.is_root:
        raise ValueError(f"--to {t.target!r} is a root: --mode overwrite would delete everything in it; "
                         "name a directory, or use --mode append")
    jdbc_side = Kind.JDBC in (t.source_kind, t.target_kind)
    database = t.source if t.source_kind is Kind.JDBC else t.target
    # Names go into the SQL the job writes (quoted: corral.domain.sql_names); refuse only
    # what the database cannot hold exactly.
    for flag, value, parts in (("--table", t.table, 2), ("--partition-column", t.partition_column, 1)):
        if value is not None and jdbc_side:
            try:
                check_for(parse_name(value, max_parts=parts), sql_dialect(database))
            except ValueError as exc:
                raise ValueError(f"{flag}: {exc}") from None
    if jdbc_side:
        if t.source_kind is Kind.JDBC and (t.table is None) == (t.query is None):
            raise ValueError("a database source needs exactly one of --table or --query")
        if t.target_kind is Kind.JDBC and (t.table is None or t.query is not None):
            raise ValueError("a database target needs --table (and no --query)")
        if t.user is None:
            raise ValueError("a database transfer needs --user")
    else:
        for flag, value in (("--table", t.table), ("--query", t.query), ("--user", t.user)):
            if value is not None:
                raise ValueError(f"{flag} is for database transfers only")
    if (t.partition_column or t.num_partitions or t.lower_bound is not None) and t.source_kind is not Kind.JDBC:
        raise ValueError("--partition-column, --num-partitions and bounds are for database sources only")
    if t.num_partitions is not None and not 1 <= t.num_partitions <= 1000:
        raise ValueError(f"--num-partitions must be between 1 and 1000, got {t.num_partitions}")
    if (t.lower_bound is None) != (t.upper_bound is None):
        raise ValueError("give both --lower-bound and --upper-bound, or neither (they are then read from the table)")
    if t.num_partitions and t.num_partitions > 1 and not t.partition_column:
        raise ValueError("--num-partitions above 1 needs --partition-column (a numeric column to split on)")
    if t.format is not None and not {Kind.S3, Kind.HDFS} & {t.source_kind, t.target_kind}:
        raise ValueError("--format describes files: it needs an s3a:// or HDFS side")
    return t


class TransferStep(StepKindBase):
    """DATA_IMPORT / DATA_EXPORT: which services it needs depends on its locations."""

    def __init__(self, direction: str) -> None:
        self.direction = direction

    def requirements(self, args: list[str]) -> tuple[str, ...]:
        try:
            return parse(self.direction, args).requirements()
        except ValueError:
            return ()  # check() reports the problem

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        try:
            parse(self.direction, args)
        except ValueError as exc:
            return [], [FieldError(("args",), str(exc))]
        return [], []

    def command(self, args: list[str], cluster: object) -> Command:
        return Command(argv=["${PYTHON}", "-m", "corral.jobs.transfer_run", self.direction, *args], env={})
