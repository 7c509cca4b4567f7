"""Secrets at rest (``corral.secretbox``): the cipher, its key, and the store's secret
columns as the database holds them, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from corral import secretbox
from corral.control import clusters, steps
from corral.control.context import ControlPlane
from corral.domain.spec import StepRequest
from corral.secretbox import SecretKeyError
from corral.store.models import Cluster, Host, Step
from corral.store.sealing import seal_plaintext_secrets
from tests.unit.helpers import make_spec

OBJECT_STORE_SECRET = "s3-secret-Zq8vXk2"
STEP_PASSWORD = "db-password-Lm4Np9"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-test-key\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture(autouse=True)
def _restore_key() -> Iterator[None]:
    """Tests here change the process-wide key: the others keep theirs."""
    before = secretbox._box
    yield
    secretbox._box = before


def test_round_trip_is_prefixed_and_randomized(tmp_path: Path) -> None:
    secretbox.configure(tmp_path)
    first, second = secretbox.encrypt("hunter2"), secretbox.encrypt("hunter2")
    assert first.startswith("enc:v1:") and second.startswith("enc:v1:")
    assert first != second  # a new IV each time: equal secrets are not visible as equal
    assert "hunter2" not in first
    assert secretbox.decrypt(first) == secretbox.decrypt(second) == "hunter2"
    assert secretbox.decrypt(secretbox.encrypt("")) == ""


def test_legacy_plaintext_reads_as_it_is(tmp_path: Path) -> None:
    secretbox.configure(tmp_path)
    assert secretbox.decrypt("a-token-written-before-encryption") == "a-token-written-before-encryption"
    column = secretbox.EncryptedJSON()
    assert column.process_result_value({"PW": "old"}, None) == {"PW": "old"}  # type: ignore[arg-type]
    assert column.process_result_value(None, None) is None  # type: ignore[arg-type]


def test_a_generated_key_file_is_0600_and_reused(tmp_path: Path) -> None:
    source = secretbox.configure(tmp_path / "home")
    key_file = tmp_path / "home" / "secret.key"
    assert source == str(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    sealed = secretbox.encrypt("x")
    secretbox.configure(tmp_path / "home")  # a restarted server: the same key
    assert secretbox.decrypt(sealed) == "x"


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_bytes(Fernet.generate_key())
    os.chmod(key_file, 0o644)
    with pytest.raises(SecretKeyError, match=r"readable by other users .*chmod 600"):
        secretbox.configure(tmp_path)


def test_the_environment_key_wins_and_a_bad_one_names_the_variable(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    assert secretbox.configure(tmp_path, key) == "CORRAL_SECRET_KEY"
    assert not (tmp_path / "secret.key").exists()
    assert Fernet(key.encode()).decrypt(secretbox.encrypt("v").removeprefix("enc:v1:").encode()) == b"v"
    with pytest.raises(SecretKeyError) as info:
        secretbox.configure(tmp_path, "not-a-fernet-key")
    assert "CORRAL_SECRET_KEY is not a valid key" in str(info.value) and "not-a-fernet-key" not in str(info.value)


def test_the_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    secretbox.configure(tmp_path, Fernet.generate_key().decode())
    sealed = secretbox.encrypt("secret")
    secretbox.configure(tmp_path, Fernet.generate_key().decode())
    with pytest.raises(SecretKeyError, match="cannot decrypt a stored secret with the key from CORRAL_SECRET_KEY"):
        secretbox.decrypt(sealed)


def _cluster_with_secrets(cp: ControlPlane) -> tuple[str, str]:
    """A cluster with an object-store secret, a step with a password, a host with a key."""
    spec = make_spec(object_storage={"endpoint": "http://127.0.0.1:9", "access_key": "ak",
                                     "secret_key": OBJECT_STORE_SECRET})
    cluster, _ = clusters.create_cluster(cp, spec)
    step = steps.add_steps(cp, cluster.id, [StepRequest.model_validate({"type": "SHELL", "args": ["true"]})])[0]
    now = time.time()
    with cp.store.session() as s:
        s.get(Step, step.id).secrets = {"PW": STEP_PASSWORD}  # type: ignore[union-attr]
        s.add(Host(id="h-1", name="h1", address="198.18.0.10", user="corral", private_key=PRIVATE_KEY, status="READY",
                   target="READY", created_at=now, status_changed_at=now))
    return cluster.id, step.id


def test_the_database_holds_no_plaintext_secret(cp_any: ControlPlane) -> None:
    cluster_id, step_id = _cluster_with_secrets(cp_any)
    with cp_any.store.session() as s:
        agent_token = s.get(Cluster, cluster_id).agent_token  # type: ignore[union-attr]
    with cp_any.store.engine.connect() as conn:
        raw = [str(v) for v in conn.execute(text(
            "select c.agent_token, c.secrets, s.secrets, h.private_key from clusters c, steps s, hosts h")).one()]
    assert all(value.lstrip('"').startswith("enc:v1:") for value in raw), raw
    joined = "\n".join(raw)
    for plain in (agent_token, OBJECT_STORE_SECRET, STEP_PASSWORD, "PRIVATE KEY", "b3BlbnNzaC1rZXkt"):
        assert plain not in joined
    with cp_any.store.session() as s:  # and the ORM reads them back
        cluster, step, host = s.get(Cluster, cluster_id), s.get(Step, step_id), s.get(Host, "h-1")
        assert cluster is not None and step is not None and host is not None
        assert len(cluster.agent_token) >= 32 and OBJECT_STORE_SECRET in (cluster.secrets or {}).values()
        assert step.secrets == {"PW": STEP_PASSWORD} and host.private_key == PRIVATE_KEY


def test_plaintext_of_an_older_store_is_read_and_then_sealed(cp_any: ControlPlane) -> None:
    cluster_id, step_id = _cluster_with_secrets(cp_any)
    with cp_any.store.engine.begin() as conn:  # as a store written before encryption holds them
        conn.execute(text("update clusters set agent_token = 'plain-agent-token', secrets = :s"),
                     {"s": '{"OBJ": "plain-object-secret"}'})
        conn.execute(text("update steps set secrets = :s"), {"s": '{"PW": "plain-password"}'})
        conn.execute(text("update hosts set private_key = 'plain-private-key'"))
    with cp_any.store.session() as s:
        assert s.get(Cluster, cluster_id).agent_token == "plain-agent-token"  # type: ignore[union-attr]
        assert s.get(Step, step_id).secrets == {"PW": "plain-password"}  # type: ignore[union-attr]
    assert seal_plaintext_secrets(cp_any.store) == 4
    assert seal_plaintext_secrets(cp_any.store) == 0  # idempotent
    with cp_any.store.engine.connect() as conn:
        raw = " ".join(str(v) for v in conn.execute(text(
            "select c.agent_token, c.secrets, s.secrets, h.private_key from clusters c, steps s, hosts h")).one())
    assert "plain-" not in raw and raw.count("enc:v1:") == 4
    with cp_any.store.session() as s:
        cluster, step, host = s.get(Cluster, cluster_id), s.get(Step, step_id), s.get(Host, "h-1")
        assert cluster is not None and step is not None and host is not None
        assert (cluster.agent_token, cluster.secrets) == ("plain-agent-token", {"OBJ": "plain-object-secret"})
        assert (step.secrets, host.private_key) == ({"PW": "plain-password"}, "plain-private-key")
