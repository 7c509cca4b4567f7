"""A real S3-compatible server for the tests: s3proxy (Maven Central) with its filesystem
backend, on 127.0.0.1 and a free port, with an access key and secret (requests are
signed; anonymous ones are refused). Its jars are fetched once into the host's cache."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
from botocore.config import Config

from corral.runtime import file_lock
from corral.runtime.hadoop import default_cache
from tests.postgres import free_port
from tests.processes import stop_child

VERSION = "4.1.0"
HERE = Path(__file__).parent / "servers" / "s3proxy"


class S3Unavailable(Exception):
    pass


def ensure_jars() -> Path:
    """DIR/lib with s3proxy and its dependencies (a no-op once fetched)."""
    home = default_cache().parent / "test-servers" / f"s3proxy-{VERSION}"
    if (home / "lib").is_dir():
        return home / "lib"
    home.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(home.parent / f".s3proxy-{VERSION}.lock"):
        if (home / "lib").is_dir():
            return home / "lib"
        building = home.with_name(home.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        result = subprocess.run(["mvn", "-q", "-B", "-f", str(HERE / "pom.xml"), "package", f"-Dserver.dir={building}"],
                                capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise S3Unavailable(f"fetching s3proxy {VERSION} failed:\n{(result.stdout + result.stderr)[-3000:]}")
        shutil.rmtree(building / "build", ignore_errors=True)
        building.rename(home)
    return home / "lib"


@dataclass
class S3Server:
    access_key: str = field(default_factory=lambda: "AKIA" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = 0
    root: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        lib = ensure_jars()
        self.root = Path(tempfile.mkdtemp(prefix="corral-s3-"))
        (self.root / "data").mkdir()
        for _ in range(5):  # a free port can be taken between choosing and binding it
            self.port = free_port()
            conf = self.root / "s3proxy.conf"
            conf.write_text("\n".join([
                f"s3proxy.endpoint={self.endpoint}", "s3proxy.authorization=aws-v2-or-v4",
                f"s3proxy.identity={self.access_key}", f"s3proxy.credential={self.secret_key}",
                "jclouds.provider=filesystem", f"jclouds.filesystem.basedir={self.root / 'data'}", ""]))
            log = open(self.root / "s3proxy.log", "ab")
            self.proc = subprocess.Popen(
                ["java", "-Xmx256m", f"-Dlogback.configurationFile={HERE / 'logback.xml'}", "-cp", f"{lib}/*",
                 "org.gaul.s3proxy.Main", "--properties", str(conf)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            if self._wait_ready():
                return
            self.stop_process()
        raise S3Unavailable("s3proxy did not start:\n" + (self.root / "s3proxy.log").read_text()[-3000:])

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                httpx.get(self.endpoint, timeout=2)  # any answer (403 without a signature) means up
                return True
            except httpx.HTTPError:
                time.sleep(0.2)
        return False

    def client(self):  # type: ignore[no-untyped-def]
        """boto3's S3 client, path-style, for setting up and checking objects."""
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def object_storage_spec(self) -> dict[str, str]:
        """The cluster spec's object_storage for this server."""
        return {"endpoint": self.endpoint, "access_key": self.access_key, "secret_key": self.secret_key}

    def stop_process(self) -> None:
        if self.proc is not None:
            stop_child(self.proc, grace=10)
        self.proc = None

    def stop(self) -> None:
        self.stop_process()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
