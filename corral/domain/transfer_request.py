"""The REST (and CLI) form of a data import or export: typed fields, turned into the
options of a DATA_IMPORT / DATA_EXPORT step (``corral.jobs.transfer``). The database
password is a secret: it becomes the step's secret environment, never an argument."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from corral.domain.spec import DisplayName, StepTimeout
from corral.domain.states import ActionOnFailure

# Option named in a parse error -> the request field at fault
FIELD_OF_OPTION = {
    "--from": "source", "--to": "target", "--format": "format", "--mode": "mode", "--table": "table",
    "--query": "query", "--user": "user", "--partition-column": "partition_column",
    "--num-partitions": "num_partitions", "--lower-bound": "lower_bound", "--upper-bound": "upper_bound",
    "--header": "header", "--delimiter": "delimiter", "--schema": "schema",
}


class DataTransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: DisplayName | None = Field(default=None, max_length=256)
    source: str = Field(alias="from", min_length=1, max_length=4096,
                        description="s3a://bucket/path, hdfs:///path, hive:[db.]table or jdbc:postgresql://...")
    target: str = Field(alias="to", min_length=1, max_length=4096)
    format: Literal["csv", "json", "parquet"] | None = None
    mode: Literal["error", "append", "overwrite"] = "error"
    table: str | None = Field(default=None, max_length=256,
                              description='exactly as named, case kept: Sales, schema.Sales, public."my.table" '
                                          "(corral.domain.sql_names)")
    query: str | None = Field(default=None, max_length=65536)
    user: str | None = Field(default=None, max_length=128)
    password: SecretStr | None = Field(default=None, max_length=512)
    partition_column: str | None = Field(default=None, max_length=128, description="its exact name")

    @field_validator("name", "source", "target", "table", "query", "user", "password", "partition_column",
                     "delimiter", "schema_ddl")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        """Every field reaches the step as an argument or its environment (the password),
        C strings that cannot hold NUL."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and "\x00" in text:
            raise ValueError("holds a NUL byte, which no program can receive in an argument or its environment")
        return value
    num_partitions: int | None = None
    lower_bound: int | None = None
    upper_bound: int | None = None
    header: bool = True
    delimiter: str = Field(default=",", min_length=1, max_length=4)
    schema_ddl: str | None = Field(default=None, alias="schema", max_length=65536)
    action_on_failure: ActionOnFailure = ActionOnFailure.CONTINUE
    timeout: StepTimeout | None = None  # the step's, in seconds

    def to_args(self) -> list[str]:
        args = ["--from", self.source, "--to", self.target, "--mode", self.mode]
        optional = {"--format": self.format, "--table": self.table, "--query": self.query, "--user": self.user,
                    "--partition-column": self.partition_column, "--num-partitions": self.num_partitions,
                    "--lower-bound": self.lower_bound, "--upper-bound": self.upper_bound, "--schema": self.schema_ddl}
        for option, value in optional.items():
            if value is not None:
                args += [option, str(value)]
        if not self.header:
            args += ["--header", "false"]
        if self.delimiter != ",":
            args += ["--delimiter", self.delimiter]
        return args

    def field_for(self, message: str) -> str:
        """The field a transfer parse error is about (the first option it names)."""
        hits = [(message.find(option), field) for option, field in FIELD_OF_OPTION.items() if option in message]
        return min(hits)[1] if hits else "source"
