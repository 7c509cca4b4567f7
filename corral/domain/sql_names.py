"""Names of database and Hive objects as users write them, and as SQL must carry them.

One exact-name rule for every name a transfer takes (``--table``, ``--partition-column``,
``hive:[db.]table``): a name is one or two parts separated by ``.``; each part means exactly
the characters written, case included (``Sales`` is the table ``Sales``, never ``sales``). A
part that holds a ``.``, a quote or a leading/trailing space is written in double quotes or
backticks, the quote character doubled inside (``public."Sales"``, ``"my.table"``,
```odd``name```). Quoting changes nothing else: ``"Sales"`` and ``Sales`` are the same name.

Corral then quotes every part for the SQL it writes, so any legal name addresses exactly
that object: PostgreSQL ``"..."`` with ``"`` doubled, MySQL/MariaDB backticks with backticks
doubled (the two quoting rules their manuals give), Spark SQL backticks. What a database
cannot hold is refused here, naming the field: PostgreSQL identifiers of more than 63 bytes
(it would silently truncate them: NAMEDATALEN), MySQL identifiers over 64 characters, ending
in a space, or outside the Basic Multilingual Plane ("Schema Object Names" in the MySQL
manual), NUL anywhere, and Hive names other than letters, digits and ``_`` (Spark's
``SessionCatalog.validateName``; the Hive metastore keeps them in lower case, so Hive names
are case-insensitive, which is its rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["postgresql", "mysql", "spark"]
QUOTES = ('"', "`")
_QUOTE_OF: dict[Dialect, str] = {"postgresql": '"', "mysql": "`", "spark": "`"}
PG_MAX_BYTES = 63  # NAMEDATALEN - 1
MYSQL_MAX_CHARS = 64


def quote(part: str, dialect: Dialect) -> str:
    """One identifier part quoted for ``dialect``: ``Sales`` -> ``"Sales"`` / ```Sales```."""
    q = _QUOTE_OF[dialect]
    return q + part.replace(q, q + q) + q


@dataclass(frozen=True)
class Name:
    """A possibly qualified name: ``parts`` exactly as meant, outermost first."""

    parts: tuple[str, ...]

    @property
    def object(self) -> str:
        """The last part: the table (or column) itself."""
        return self.parts[-1]

    @property
    def qualifier(self) -> str | None:
        """The schema (PostgreSQL), database (MySQL, Hive) or None."""
        return self.parts[0] if len(self.parts) > 1 else None

    def sql(self, dialect: Dialect) -> str:
        """``"public"."Sales"``: every part quoted for ``dialect``."""
        return ".".join(quote(p, dialect) for p in self.parts)

    def sibling(self, name: str) -> "Name":
        """Another object in the same schema/database (a staging table beside its target)."""
        return Name((*self.parts[:-1], name))

    def __str__(self) -> str:
        """The name in the user's notation, quoted only where a part needs it."""
        return ".".join(p if _plain(p) else quote(p, "postgresql") for p in self.parts)


def _plain(part: str) -> bool:
    return part == part.strip() and not any(c in part for c in (".", *QUOTES))


def parse_name(text: str, *, max_parts: int = 2) -> Name:
    """``text`` in the exact-name notation above; ValueError saying what is wrong."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] in QUOTES:
            q, i, buf = text[i], i + 1, []
            while True:
                end = text.find(q, i)
                if end < 0:
                    raise ValueError(f"unterminated {q}...{q} in {text!r}")
                buf.append(text[i:end])
                if text.startswith(q + q, end):
                    buf.append(q)
                    i = end + 2
                    continue
                i = end + 1
                break
            part = "".join(buf)
        else:
            end = i
            while end < n and text[end] != ".":
                if text[end] in QUOTES:
                    raise ValueError(f"{text!r}: a quote inside an unquoted name; quote the whole part, "
                                     f"doubling the quote inside")
                end += 1
            part, i = text[i:end], end
            if part != part.strip():
                raise ValueError(f"{text!r}: leading or trailing spaces in a name; put the part in double quotes")
        if not part:
            raise ValueError(f"{text!r}: an empty name")
        if "\0" in part:
            raise ValueError(f"{text!r}: a name cannot hold a NUL character")
        parts.append(part)
        if i == n:
            break
        if text[i] != ".":
            raise ValueError(f"{text!r}: expected . after a quoted part")
        i += 1
    if len(parts) > max_parts:
        shape = "name" if max_parts == 1 else "name or qualifier.name"
        raise ValueError(f"{text!r}: expected a {shape}, got {len(parts)} parts (quote a part that holds a dot)")
    return Name(tuple(parts))


def check_for(name: Name, dialect: Dialect) -> None:
    """ValueError when ``dialect``'s database cannot hold ``name`` exactly (see the module)."""
    for part in name.parts:
        if dialect == "postgresql" and len(part.encode()) > PG_MAX_BYTES:
            raise ValueError(f"{part!r} is longer than PostgreSQL's {PG_MAX_BYTES} bytes (it would be truncated)")
        if dialect == "mysql":
            if len(part) > MYSQL_MAX_CHARS:
                raise ValueError(f"{part!r} is longer than MySQL's {MYSQL_MAX_CHARS} characters")
            if part.endswith(" "):
                raise ValueError(f"{part!r}: MySQL names cannot end with a space")
            if any(ord(c) > 0xFFFF for c in part):
                raise ValueError(f"{part!r}: MySQL names hold only Basic Multilingual Plane characters")
        if dialect == "spark" and not all(c.isascii() and (c.isalnum() or c == "_") for c in part):
            raise ValueError(f"{part!r}: Hive table and database names are letters, digits and _")


def sql_dialect(jdbc_url: str) -> Dialect:
    """The quoting dialect of a JDBC URL's database."""
    return "postgresql" if jdbc_url.startswith("jdbc:postgresql:") else "mysql"
