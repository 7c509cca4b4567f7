"""The file formats Corral writes configuration into: one renderer per format, and what
each format (or its reader) cannot hold, for validation.

Every value a user gives reaches its reader exactly, as that reader defines values:

- **Hadoop XML** (``*-site.xml``, ``capacity-scheduler.xml``, ``hive-site.xml``; read by
  Hadoop's ``Configuration``, which Hive's ``HiveConf`` extends). ``&``, ``<`` and ``>`` are
  escaped; a carriage return is written ``&#13;`` (an XML parser reads a raw CR as LF,
  XML 1.0 section 2.11). XML 1.0 cannot carry the other control characters (only TAB, LF,
  CR), U+FFFE or U+FFFF at all (section 2.2), so they are refused. The reader's own rules
  stay: ``Configuration`` trims property *names*, ignores an *empty* value (the property
  keeps Hadoop's default: so an empty value is refused), and expands ``${name}`` in values
  when they are read (a system property, ``${env.NAME}``, or another property; no escape
  exists). Its typed getters (``getInt``, ``getTrimmed`` ...) trim values.
- **Java properties** (``spark-defaults.conf``; Spark reads it with
  ``java.util.Properties.load`` through a UTF-8 ``Reader``, ``Utils.getPropertiesFromFile``
  and the launcher's ``AbstractCommandBuilder.loadPropertiesFile``). Backslashes,
  TAB/LF/CR/FF and a leading space, ``=`` or ``:`` of a value are escaped, as are ``=``,
  ``:``, whitespace, ``#`` and ``!`` in keys; other control characters are written
  ``\\uXXXX``; other text is UTF-8. Spark then trims each value (characters up to U+0020
  except CR and LF; its launcher trims those too): that is Spark's rule, not a loss. It
  reads only keys that start with ``spark.``, so others are refused.
- **Shell** (``hadoop-env.sh``, sourced by Corral's Hadoop launcher; ``spark-env.sh``,
  sourced by Spark's scripts): ``export NAME="value"`` lines, as EMR's ``export``
  classifications. Values are shell by design: ``$NAME`` and ``${NAME}`` expand (so
  ``$HADOOP_OPTS -Dx`` adds to a variable; the launcher sources with ``set +u``, so an
  unset one is empty); every other ``$``, backticks, ``"`` and ``\\`` are literal (no
  command substitution, no other parameter expansion, no way out of the quotes). A value
  cannot hold a line break (LF or CR); a name must be a shell name and not one of the
  variables bash keeps for itself (``IFS``, ``UID``, ``BASH*`` ...).

Two placeholder syntaxes are filled in after rendering, in values only (never in names),
each value escaped for the file's format, so neither can change a file's structure:

- ``{{secret:NAME}}`` (``corral.domain.secrets``): by the control plane, only in the plan
  sent to a node. A user value may not contain ``{{secret:``; validation refuses it.
- ``${SPARK_HOME}``, ``${HADOOP_HOME}``, ``${JAVA_HOME}``, ``${PYTHON}``,
  ``${SPARK_CDS_OPTS}``, ``${HADOOP_CDS_OPTS}`` (``corral.agent.protocol``): by the node's
  agent, with that node's paths, in Corral's defaults and in user values alike (a user's
  ``spark.driver.extraClassPath`` can start with ``${SPARK_HOME}/jars/*`` as Corral's
  does). ``$${NAME}`` writes ``${NAME}`` itself.

Every file is written as UTF-8: what Spark's and Hadoop's readers (an XML declaration
without an encoding) expect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

from corral.agent.protocol import RUNTIME_PLACEHOLDERS, FileKind, protect_runtime_placeholders
from corral.domain.secrets import SECRET_MARK

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# `$NAME` or `${NAME}`: what a shell value may expand; any other `$` is written literally.
_SHELL_REFERENCE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")


class RenderError(ValueError):
    """A value its format cannot carry; validation refuses these before anything is rendered."""


# -- what no format holds -------------------------------------------------------------------

def _char(c: str) -> str:
    return f"U+{ord(c):04X}"


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be written into any file Corral renders, or None.

    NUL cannot reach a process (argv, environment) and lone surrogates are not Unicode
    text, so neither can be encoded as UTF-8."""
    for i, c in enumerate(text):
        if c == "\0":
            return f"contains a NUL character (U+0000) at offset {i}, which no configuration file can carry"
        if "\ud800" <= c <= "\udfff":
            return f"contains a lone surrogate ({_char(c)}) at offset {i}, which is not Unicode text"
    return None


def placeholder_problem(text: str) -> str | None:
    """Why user-given ``text`` may not stand in a rendered file: it would be taken for a
    secret placeholder (``corral.domain.secrets``) and filled in."""
    if SECRET_MARK in text:
        return ("contains '{{secret:', Corral's secret placeholder: secrets go in their own fields "
                "(object_storage.secret_key, metastore.password)")
    return None


def user_text_problem(text: str) -> str | None:
    """What no file can carry, or a placeholder: the checks every user-given value passes."""
    return text_problem(text) or placeholder_problem(text)


# -- Hadoop XML -----------------------------------------------------------------------------

def _xml_forbidden(c: str) -> bool:
    # XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
    o = ord(c)
    return (o < 0x20 and c not in "\t\n\r") or 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF)


def xml_problem(text: str) -> str | None:
    for i, c in enumerate(text):
        if _xml_forbidden(c):
            return f"contains {_char(c)} at offset {i}, a character XML 1.0 cannot carry (Hadoop's *-site.xml)"
    return None


def xml_text(text: str) -> str:
    """``text`` as XML character data; a CR as ``&#13;`` so that it is not read as LF.

    Raises RenderError for characters XML 1.0 forbids."""
    problem = xml_problem(text)
    if problem:
        raise RenderError(problem)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def hadoop_xml(props: Mapping[str, str], final: tuple[str, ...] = ()) -> str:
    """A Hadoop configuration file (``<configuration>`` of ``<property>``), sorted by name;
    ``final`` properties cannot be overridden by a job's own configuration."""
    rows = "".join(
        f"  <property><name>{xml_text(protect_runtime_placeholders(k))}</name><value>{xml_text(v)}</value>"
        f"{'<final>true</final>' if k in final else ''}</property>\n"
        for k, v in sorted(props.items())
    )
    return ('<?xml version="1.0"?>\n<!-- Rendered by Corral: defaults from the cluster spec, then the user\'s '
            f"properties. -->\n<configuration>\n{rows}</configuration>\n")


_JAVA_TRIMMED = "".join(map(chr, range(0x21)))  # what java.lang.String.trim removes


def _hadoop_key_problem(key: str) -> str | None:
    if key != key.strip(_JAVA_TRIMMED):
        return "starts or ends with whitespace, which Hadoop's Configuration trims off"
    return xml_problem(key)


def _hadoop_value_problem(value: str) -> str | None:
    if value == "":
        return ("is empty: Hadoop's Configuration ignores an empty <value> and keeps the property's "
                "default; leave the property out or give a value")
    return xml_problem(value)


# -- Java properties --------------------------------------------------------------------------

_PROPERTY_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}


def _properties_char(c: str) -> str:
    if c in _PROPERTY_ESCAPES:
        return _PROPERTY_ESCAPES[c]
    o = ord(c)
    if o < 0x20 or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xDFFF or c in "\u2028\u2029":
        return f"\\u{o:04x}"
    return c


def properties_key(key: str) -> str:
    """A key for ``Properties.load``: its separators (``=``, ``:``, whitespace) and comment
    marks (``#``, ``!``) escaped wherever they are."""
    if not key:
        raise RenderError("a properties key cannot be empty")
    return "".join("\\" + c if c in " =:#!" else _properties_char(c) for c in protect_runtime_placeholders(key))


def properties_value(value: str) -> str:
    """A value (or a piece of one) for ``Properties.load``: escapes that read back as
    ``value`` wherever it stands in the value. A leading space, ``=`` or ``:`` is escaped
    (the reader would skip it as the separator); text otherwise stays UTF-8."""
    out = "".join(_properties_char(c) for c in value)
    return "\\" + out if out[:1] in (" ", "=", ":") else out


def java_properties(props: Mapping[str, str], header: str) -> str:
    """``key value`` lines (whitespace is the separator, as in Spark's template), sorted."""
    lines = [f"# {header}"] + [f"{properties_key(k)} {properties_value(v)}" for k, v in sorted(props.items())]
    return "\n".join(lines) + "\n"


def _spark_key_problem(key: str) -> str | None:
    if not key.startswith("spark."):
        return "does not start with 'spark.': Spark reads only such properties from spark-defaults.conf and would ignore it"
    return None


# -- shell ------------------------------------------------------------------------------------

def _shell_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")


def shell_value(value: str) -> str:
    """``value`` for the inside of a double-quoted shell word: ``$NAME`` and ``${NAME}``
    expand, everything else is literal. References are written braced (``${NAME}``), so a
    value filled in after them cannot extend the name; ``$SPARK_HOME``-style references to
    a runtime placeholder's name stay unbraced, the shell's variable (``${SPARK_HOME}`` is
    the agent's). Raises RenderError for line breaks."""
    problem = _shell_value_problem(value)
    if problem:
        raise RenderError(problem)
    out, last = [], 0
    for match in _SHELL_REFERENCE.finditer(value):
        out.append(_shell_escape(value[last:match.start()]).replace("$", "\\$"))
        name = match.group(0).lstrip("$").strip("{}")
        braced = match.group(0).startswith("${") or name not in RUNTIME_PLACEHOLDERS
        out.append("${" + name + "}" if braced else "$" + name)
        last = match.end()
    out.append(_shell_escape(value[last:]).replace("$", "\\$"))
    return "".join(out)


def shell_literal(text: str) -> str:
    """``text`` inside a double-quoted shell word, read back exactly (``$`` too)."""
    if "\0" in text:
        raise RenderError("a shell word cannot hold a NUL character")
    return _shell_escape(text).replace("$", "\\$")


def shell_exports(props: Mapping[str, str], header: str, trailer: Mapping[str, str] | None = None) -> str:
    """``export NAME="value"`` lines, sorted; then ``trailer``'s, whose values are literal
    (Corral's own settings that must win over the user's)."""
    lines = [f"# {header}"]
    for name, value in sorted(props.items()):
        if _shell_key_problem(name):
            raise RenderError(f"{name!r} {_shell_key_problem(name)}")
        lines.append(f'export {name}="{shell_value(value)}"')
    if trailer:
        lines.append("# Corral's settings for this node, which win over the classification's:")
        lines += [f'export {name}="{shell_literal(value)}"' for name, value in trailer.items()]
    return "\n".join(lines) + "\n"


# Variables bash keeps for itself: read-only ones (an export fails, and the sourcing script
# with it), ones it changes on every use, and IFS, which would change how the sourcing
# script splits its own command lines (bash(1), "Shell Variables").
_BASH_OWN = frozenset({"_", "IFS", "UID", "EUID", "PPID", "SHELLOPTS", "RANDOM", "SRANDOM", "SECONDS", "LINENO",
                       "HISTCMD", "FUNCNAME", "GROUPS", "DIRSTACK", "PIPESTATUS", "EPOCHREALTIME", "EPOCHSECONDS",
                       "OPTIND", "OPTARG"})


def _shell_key_problem(key: str) -> str | None:
    if not _SHELL_NAME.fullmatch(key):
        return "is not a shell variable name (letters, digits and '_', not starting with a digit)"
    if key in _BASH_OWN or key.startswith("BASH"):
        return "is a variable bash sets itself (read-only, changing, or how it splits words)"
    return None


def _shell_value_problem(value: str) -> str | None:
    for i, c in enumerate(value):
        if c in "\r\n":
            return f"contains a line break ({_char(c)}) at offset {i}: a shell export is one line"
    return None


# -- formats, as services declare them for their classifications ----------------------------

# How a value inserted into a rendered file (a secret, a runtime path) is escaped there.
LITERAL: dict[FileKind, Callable[[str], str]] = {"xml": xml_text, "properties": properties_value, "shell": shell_literal}


@dataclass(frozen=True)
class Format:
    """What a classification's properties are written as: the file kind, and the checks a
    key and a value must pass (each returns the problem or None)."""

    kind: FileKind
    key_problem: Callable[[str], str | None]
    value_problem: Callable[[str], str | None]

    def problems(self, key: str, value: str) -> list[str]:
        """Why ``key``/``value`` cannot be written as given (empty when they can)."""
        found = []
        if key == "":
            found.append("the property name is empty")
        else:
            problem = user_text_problem(key) or self.key_problem(key)
            if problem:
                found.append(f"the name {problem}")
        problem = user_text_problem(value) or self.value_problem(value)
        if problem:
            found.append(f"the value {problem}")
        return found


HADOOP_XML = Format("xml", _hadoop_key_problem, _hadoop_value_problem)
SPARK_PROPERTIES = Format("properties", _spark_key_problem, lambda value: None)
SHELL_EXPORTS = Format("shell", _shell_key_problem, _shell_value_problem)
