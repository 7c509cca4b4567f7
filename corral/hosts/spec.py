"""What a user gives to register a host (``POST /api/v1/hosts``, ``corral host add``),
checked field by field; every refusal names its field (422).

Rules and their sources:
- ``address``: a DNS host name (RFC 1123 labels) or an IPv4/IPv6 address; no user, port
  or scheme (those have their own fields).
- ``name``: how the host is called in Corral (default: the address): letters, digits and
  ``. _ - :``, at most 100 characters; ``~`` is Corral's (a removed host's row is renamed
  ``NAME~ID`` so that the name is free again).
- ``user``: a portable login name (POSIX's portable filename characters, not starting
  with ``-``; at most 32 characters, Linux's limit).
- ``port``: 1-65535.
- ``labels``: at most 32 ``KEY=VALUE`` pairs; keys as Kubernetes label keys (an optional
  DNS prefix and ``/``, then letters, digits, ``. _ -``, alphanumeric at both ends, at
  most 63 characters), values letters, digits and ``. _ -`` (at most 63, may be empty).
- ``host_key_fingerprint``: ``SHA256:`` and 43 base64 characters, as ``ssh-keygen -lf``
  and OpenSSH print it.
- ``private_key``: an unencrypted OpenSSH or PEM private key (ed25519, ecdsa, rsa);
  without it the control plane's own ``~/.ssh`` keys are used.
- ``cores`` 1-4096; ``memory`` ``4g``, ``4096m`` or ``4096`` (MiB), 256 MiB to 64 TiB.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from corral.providers.ssh_transport import load_private_key

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
USER_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
LABEL_KEY_RE = re.compile(rf"^([a-z0-9]([a-z0-9.-]{{0,251}}[a-z0-9])?/)?{_LABEL}$")
LABEL_VALUE_RE = re.compile(r"^[A-Za-z0-9._-]{0,63}$")
FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
_HOSTNAME_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_LABELS = 32
MAX_KEY_CHARS = 16 << 10
MIN_MEMORY_MB, MAX_MEMORY_MB = 256, 64 << 20
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(m|mb|mib|g|gb|gib|t|tb|tib)?\s*$", re.IGNORECASE)


def valid_address(value: str) -> str:
    """``value`` if it is a host name or an IP address, else ``ValueError`` saying why."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f"{value!r} is not a host name or an IP address (give the user and port with --user and "
                         "--port, not in the address)")
    if name.split(".")[-1].isdigit():
        raise ValueError(f"{value!r} is not a valid IPv4 address")
    return value


def parse_memory(value: str | int) -> int:
    """``4g`` / ``4096m`` / ``4096`` / 4096 -> MiB. ``ValueError`` names the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("not a size")
    if isinstance(value, int):
        mib = value
    else:
        match = _SIZE_RE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a size: give MiB (4096, 4096m) or GiB (4g)")
        unit = (match.group(2) or "m")[0].lower()
        mib = int(match.group(1)) << {"m": 0, "g": 10, "t": 20}[unit]
    if not MIN_MEMORY_MB <= mib <= MAX_MEMORY_MB:
        raise ValueError(f"{mib} MiB is out of range ({MIN_MEMORY_MB} MiB to {MAX_MEMORY_MB >> 20} TiB)")
    return mib


def parse_labels(pairs: list[str]) -> dict[str, str]:
    """``["rack=r1", "ssd=true"]`` -> a dict (the CLI's ``--label``); ``ValueError`` names the pair."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{pair!r} is not KEY=VALUE")
        labels[key] = value
    return labels


class HostSpec(BaseModel):
    """The body of ``POST /api/v1/hosts``."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(max_length=255, description="host name or IP address the control plane connects to")
    name: str | None = Field(default=None, description="name in Corral (default: the address)")
    user: str = Field(default="root", description="login user")
    port: int = Field(default=22, ge=1, le=65535)
    private_key: SecretStr | None = Field(default=None, description="unencrypted private key text (write-only)")
    labels: dict[str, str] = Field(default_factory=dict)
    host_key_fingerprint: str | None = Field(default=None, description="SHA256:... to pin instead of the first key seen")
    cores: int | None = Field(default=None, ge=1, le=4096, description="overrides the cores the check finds")
    memory: str | int | None = Field(default=None, description="overrides the memory the check finds: 4g, 4096m, 4096 (MiB)")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return valid_address(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a host name for Corral: letters, digits and . _ - :, "
                             "starting with a letter or digit, at most 100 characters")
        return value

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not USER_RE.match(value):
            raise ValueError(f"{value!r} is not a login name: letters, digits and . _ -, not starting with -, "
                             "at most 32 characters")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_LABELS:
            raise ValueError(f"{len(value)} labels, at most {MAX_LABELS}")
        for key, label in value.items():
            if not LABEL_KEY_RE.match(key):
                raise ValueError(f"label key {key!r}: letters, digits and . _ -, alphanumeric at both ends, at most "
                                 "63 characters (an optional DNS prefix and / before)")
            if not LABEL_VALUE_RE.match(label):
                raise ValueError(f"label {key}: value {label!r}: letters, digits and . _ -, at most 63 characters")
        return value

    @field_validator("host_key_fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not FINGERPRINT_RE.match(value):
            raise ValueError("not an OpenSSH SHA256 fingerprint: SHA256: and 43 base64 characters "
                             "(as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it)")
        return value

    @field_validator("private_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if len(text) > MAX_KEY_CHARS:
            raise ValueError(f"longer than {MAX_KEY_CHARS} characters: not a private key")
        load_private_key(text)  # ValueError: encrypted, or not a key (the message never holds the key)
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        if value is not None:
            parse_memory(value)
        return value

    @property
    def memory_mb(self) -> int | None:
        return parse_memory(self.memory) if self.memory is not None else None

    @property
    def host_name(self) -> str:
        return self.name or self.address
