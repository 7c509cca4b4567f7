"""Where a step's arguments name local files, read the way each consumer reads them.

A step's local files live on the machine where the CLI runs. The CLI finds them with the
step kind's own parser (``StepKind.check``, which uses these helpers and never touches a
disk), uploads each one, and names its sha256 in the request's ``files``; the control
plane checks with the same parser that every one was uploaded; the plan points each
reference at the shipped copy on the master (``rewrite``), keeping whatever surrounds it
(a ``file:`` prefix, a ``#alias``, the other items of a comma list).

A reference is read in one of four dialects, because the consumers differ:

- ``PATH``: a plain file name (``java.io.File``, bash, ``hadoop jar``'s RunJar): every
  character is part of the name.
- ``HADOOP_PATH``: ``org.apache.hadoop.fs.Path(String)``: an optional scheme (``file:``
  is local, any other is remote); ``#`` and ``%`` are part of the name.
- ``HADOOP_URI``: ``java.net.URI``, as GenericOptionsParser.validateFiles reads
  ``-files``/``-archives``/``-libjars``: ``#alias`` is the link name in the task's
  directory and ``%XX`` escapes are decoded; no scheme means the local file system.
- ``SPARK_URI``: ``org.apache.spark.util.Utils.resolveURI`` (spark-submit's application,
  ``--files``, ``--jars``, ...): a scheme makes it a URI (``file:`` local; ``local:``,
  ``hdfs:``, ``s3a:`` ... remote); without one, a path with a ``#`` fragment is read as a
  URI (the fragment is the alias YARN links it under, ``%XX`` decoded), any other is a
  plain path taken literally (also when ``java.net.URI`` cannot parse it).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote, unquote

from corral.errors import FieldError


class Dialect(enum.Enum):
    PATH = "path"
    HADOOP_PATH = "hadoop-path"
    HADOOP_URI = "hadoop-uri"
    SPARK_URI = "spark-uri"


@dataclass(frozen=True)
class LocalFile:
    """One reference to a local file inside argument ``index``.

    ``path`` is the file the consumer would open (decoded, without ``file:`` and
    ``#alias``; relative when the user wrote it so). ``args[index][start:end]`` is the text
    that names it, which ``rewrite`` replaces; ``uri`` says that text is read as a URI, so a
    replacement must be percent-encoded."""

    index: int
    path: str
    what: str  # how messages name it, e.g. "--files entry"
    start: int
    end: int
    uri: bool = False
    alias: str | None = None
    hint: str = ""  # appended to "not found" messages


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Characters java.net.URI refuses outside an escape (RFC 2396 plus its own rules); anything
# else, non-ASCII letters included, it accepts.
_URI_ILLEGAL = set(' "<>\\^`{|}[]') | {chr(c) for c in range(0x20)} | {"\x7f"}
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What a replacement keeps unescaped in a URI: java.net.URI's path characters minus "," (the
# lists' separator) and "#" (the alias).
_URI_SAFE = "/!$&'()*+;=:@-._~"


def scheme_of(text: str) -> str | None:
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def java_uri_parses(text: str) -> bool:
    """Whether ``new java.net.URI(text)`` accepts ``text`` (close enough for file names:
    no illegal character, every ``%`` an escape, at most one ``#``)."""
    return not (set(text) & _URI_ILLEGAL) and not _ESCAPE.search(text) and text.count("#") <= 1


def _file_uri(index: int, text: str, offset: int, what: str, decode: bool) -> LocalFile:
    """A ``file:`` URI: the span is its path (after ``file:`` or ``file://host``), up to ``#``."""
    body = 5  # len("file:")
    if text[body:body + 2] == "//":
        slash = text.find("/", body + 2)
        body = slash if slash != -1 else len(text)
    end = text.find("#", body) if decode else -1
    end = len(text) if end == -1 else end
    raw = text[body:end]
    alias = text[end + 1:] if end < len(text) else None
    return LocalFile(index, unquote(raw) if decode else raw, what, offset + body, offset + end, uri=decode, alias=alias)


def reference(index: int, text: str, offset: int, what: str, dialect: Dialect) -> LocalFile | None:
    """The local file ``text`` names (``text`` is ``args[index][offset:offset + len(text)]``),
    or None when it names a remote one (or nothing)."""
    if not text:
        return None
    if dialect is Dialect.PATH:
        return LocalFile(index, text, what, offset, offset + len(text))
    scheme = scheme_of(text)
    if scheme is not None:
        if scheme != "file":
            return None
        decode = dialect is not Dialect.HADOOP_PATH and java_uri_parses(text)
        return _file_uri(index, text, offset, what, decode)
    if dialect is Dialect.HADOOP_PATH:
        return LocalFile(index, text, what, offset, offset + len(text))
    uri = java_uri_parses(text) and (dialect is Dialect.HADOOP_URI or "#" in text)
    if not uri:
        return LocalFile(index, text, what, offset, offset + len(text))
    end = text.find("#")
    end = len(text) if end == -1 else end
    alias = text[end + 1:] if end < len(text) else None
    return LocalFile(index, unquote(text[:end]), what, offset, offset + end, uri=True, alias=alias)


def list_references(index: int, value: str, offset: int, what: str, dialect: Dialect) -> list[LocalFile]:
    """The local files of a comma-separated list (Spark's ``Utils.stringToSeq`` and Hadoop's
    ``validateFiles`` split at every comma; Spark trims each item)."""
    found: list[LocalFile] = []
    position = 0
    for item in value.split(","):
        stripped = item.strip()
        if stripped:
            ref = reference(index, stripped, offset + position + item.index(stripped), what, dialect)
            if ref is not None:
                found.append(ref)
        position += len(item) + 1
    return found


def wildcard_errors(files: list[LocalFile]) -> list[FieldError]:
    """Spark (DependencyUtils.resolveGlobPaths) and Hadoop (-libjars dir/*) expand patterns
    in local list entries themselves; Corral ships files, so a pattern must be spelled out."""
    return [FieldError(("args", f.index), f"{f.what} {f.path!r} is a wildcard: name the files (Corral ships "
                                          "files, not patterns)")
            for f in files if "*" in f.path or "?" in f.path]


def node_name(path: str) -> str:
    """The file's name on the node: the last component of its local path, so YARN links it
    (and Spark's SparkFiles finds it) under the user's name when no alias says otherwise."""
    return path.rstrip("/").rsplit("/", 1)[-1] if path.rstrip("/") else ""


def encode(path: str) -> str:
    """``path`` as the path part of a URI that java.net.URI decodes back to ``path``."""
    return quote(path, safe=_URI_SAFE)


def rewrite(args: list[str], files: list[LocalFile], replacement: Callable[[LocalFile], str]) -> list[str]:
    """``args`` with each reference's text replaced by ``replacement(file)`` (already
    encoded for its dialect), everything around it kept."""
    out = list(args)
    for f in sorted(files, key=lambda f: (f.index, f.start), reverse=True):
        arg = out[f.index]
        out[f.index] = arg[:f.start] + replacement(f) + arg[f.end:]
    return out


# -- Hadoop's generic options (GenericOptionsParser, read by ToolRunner programs) -------------

GENERIC_VALUE_OPTIONS = ("conf", "D", "fs", "jt", "files", "libjars", "archives", "tokenCacheFile")
GENERIC_FILE_LISTS = {"files": Dialect.HADOOP_URI, "libjars": Dialect.HADOOP_URI, "archives": Dialect.HADOOP_URI}
# -conf is read by Configuration.addResource(Path) as a local file; -tokenCacheFile from
# the local file system.
GENERIC_FILES = ("conf", "tokenCacheFile")


@dataclass(frozen=True)
class GenericOption:
    name: str  # without dashes: "files", "D", ...
    value: str
    value_index: int  # the argument holding the value
    value_offset: int  # where the value starts inside it
    next_index: int  # the first argument after the option


def generic_option(args: list[str], i: int) -> GenericOption | FieldError | None:
    """The generic option at ``args[i]`` as commons-cli's GnuParser reads it for
    GenericOptionsParser: ``-name value``, ``--name value``, ``-name=value``,
    ``--name=value`` and ``-Dkey=value``. None when ``args[i]`` is not one."""
    arg = args[i]
    dashes = 2 if arg.startswith("--") else 1 if arg.startswith("-") else 0
    if not dashes:
        return None
    name = arg[dashes:]
    if name in GENERIC_VALUE_OPTIONS:
        if i + 1 >= len(args):
            return FieldError(("args", i), f"{arg} needs a value")
        return GenericOption(name, args[i + 1], i + 1, 0, i + 2)
    if "=" in name and name.split("=", 1)[0] in GENERIC_VALUE_OPTIONS:
        key = name.split("=", 1)[0]
        return GenericOption(key, name.split("=", 1)[1], i, dashes + len(key) + 1, i + 1)
    if dashes == 1 and name.startswith("D") and len(name) > 1:
        return GenericOption("D", name[1:], i, 2, i + 1)
    return None


def listed_files(index: int, value: str, offset: int, what: str, dialect: Dialect) -> tuple[list[LocalFile], list[FieldError]]:
    """An option's comma-separated list of files ("<what> entry"), and its wildcards refused."""
    found = list_references(index, value, offset, f"{what} entry", dialect)
    return found, wildcard_errors(found)


def named_file(index: int, value: str, offset: int, what: str, dialect: Dialect) -> tuple[list[LocalFile], list[FieldError]]:
    """An option's one file ("<what> file"), if it is local."""
    ref = reference(index, value, offset, f"{what} file", dialect)
    return ([ref] if ref is not None else []), []


def generic_option_files(option: GenericOption) -> tuple[list[LocalFile], list[FieldError]]:
    """The local files a generic option names, and what is wrong with them."""
    at = (option.value_index, option.value, option.value_offset, f"-{option.name}")
    if option.name in GENERIC_FILE_LISTS:
        return listed_files(*at, GENERIC_FILE_LISTS[option.name])
    if option.name in GENERIC_FILES:
        return named_file(*at, Dialect.HADOOP_PATH)
    return [], []


def leading_generic_options(args: list[str], start: int) -> tuple[list[LocalFile], list[FieldError]]:
    """Local files of the generic options at the start of a program's arguments
    (``args[start:]``): GenericOptionsParser stops at the first argument that is not one
    (``parse(opts, args, stopAtNonOption=true)``), and at ``--``."""
    files: list[LocalFile] = []
    errors: list[FieldError] = []
    i = start
    while i < len(args) and args[i] != "--":
        option = generic_option(args, i)
        if option is None:
            break
        if isinstance(option, FieldError):
            return files, [*errors, option]
        found, problems = generic_option_files(option)
        files, errors = files + found, errors + problems
        i = option.next_index
    return files, errors
