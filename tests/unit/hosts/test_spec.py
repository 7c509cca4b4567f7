"""``HostSpec``: each bad field is refused naming itself; sizes, labels and keys parse."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from corral.hosts.spec import HostSpec, parse_labels, parse_memory

FP = "SHA256:" + "A" * 43


def refused(**body: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        HostSpec.model_validate({"address": "198.18.0.5", **body})
    (error,) = info.value.errors()
    return ".".join(str(p) for p in error["loc"]), error["msg"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("keys")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "plain")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret-pass", "-f", str(d / "locked")], check=True)
    return {"plain": (d / "plain").read_text(), "locked": (d / "locked").read_text()}


def test_defaults() -> None:
    spec = HostSpec.model_validate({"address": "node1.example.com"})
    assert (spec.host_name, spec.user, spec.port, spec.labels, spec.memory_mb) == ("node1.example.com", "root", 22, {}, None)


@pytest.mark.parametrize("address", ["198.18.0.5", "::1", "fe80::1", "node-1", "a.b.example.com", "host.example."])
def test_good_addresses(address: str) -> None:
    HostSpec.model_validate({"address": address})


@pytest.mark.parametrize("address", ["root@h", "h:22", "http://h", "-h", "a..b", "999.1.1.1", "h_1", "", "a b"])
def test_bad_addresses(address: str) -> None:
    loc, msg = refused(address=address)
    assert loc == "address" and ("not a host name or an IP address" in msg or "IPv4" in msg)


@pytest.mark.parametrize(("field", "value"), [
    ("name", "has space"), ("name", "a~1"), ("name", "-x"), ("name", "x" * 101), ("user", "-root"), ("user", "a b"),
    ("user", "u" * 33), ("port", 0), ("port", 65536), ("cores", 0), ("memory", "4x"), ("memory", "100m"),
    ("memory", "-1"), ("host_key_fingerprint", "SHA256:short"), ("host_key_fingerprint", "MD5:" + "a" * 43),
    ("labels", {"bad key": "v"}), ("labels", {"k": "v v"}), ("labels", {"-k": "v"}),
    ("labels", {f"k{i}": "v" for i in range(33)}), ("private_key", "not a key"),
])
def test_bad_fields_are_named(field: str, value: Any) -> None:
    loc, _ = refused(**{field: value})
    assert loc == field


def test_an_encrypted_key_is_refused_naming_the_key_never_showing_it(keys: dict[str, str]) -> None:
    loc, msg = refused(private_key=keys["locked"])
    assert loc == "private_key" and "passphrase" in msg
    assert "PRIVATE KEY" not in msg


def test_a_plain_key_is_accepted_and_kept_secret(keys: dict[str, str]) -> None:
    spec = HostSpec.model_validate({"address": "h1", "private_key": keys["plain"]})
    assert spec.private_key is not None and spec.private_key.get_secret_value() == keys["plain"]
    assert "PRIVATE" not in repr(spec) and "PRIVATE" not in str(spec.model_dump())


def test_good_labels_and_fingerprint() -> None:
    spec = HostSpec.model_validate({"address": "h1", "labels": {"rack": "r1", "corral.io/disk": "ssd", "empty": ""},
                                    "host_key_fingerprint": "SHA256:" + "aB3+/" * 8 + "xyz"})
    assert spec.labels["corral.io/disk"] == "ssd"


@pytest.mark.parametrize(("text", "mib"), [("4g", 4096), ("4G", 4096), ("4096m", 4096), ("4096", 4096), (4096, 4096),
                                           ("2GiB", 2048), ("512mb", 512), ("1t", 1 << 20)])
def test_memory_sizes(text: Any, mib: int) -> None:
    assert parse_memory(text) == mib
    assert HostSpec.model_validate({"address": "h", "memory": text}).memory_mb == mib


def test_label_pairs() -> None:
    assert parse_labels(["a=1", "b=", "c=x=y"]) == {"a": "1", "b": "", "c": "x=y"}
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        parse_labels(["novalue"])


def test_unknown_fields_are_refused() -> None:
    loc, _ = refused(password="x")
    assert loc == "password"


def test_key_file_on_disk_is_not_read_by_the_spec(tmp_path: Path) -> None:
    """A path is not a key: the CLI reads files, the server only takes key text."""
    loc, _ = refused(private_key=str(tmp_path / "id_ed25519"))
    assert loc == "private_key"
