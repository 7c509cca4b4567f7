"""The Hadoop runtime: the release's jars from Maven Central, in a host-wide cache.

``maven/pom.xml`` names the artifacts; ``mvn package`` on it copies them (with what they
pull in) to ``<cache>/hadoop-<version>-<digest>/lib`` and unpacks the HDFS web UIs to
``resources/``. Corral's Java classes (``java/``: a socket factory that binds outgoing
connections to the node's own address, the web proxy's redirect filter, and the Spark
driver plugin that keeps YARN's AM filter and the driver's UI start apart) are compiled
beside them into ``classes/``, against these jars and the release's Spark jars. The
directory name carries a digest of those inputs, so a changed pom means a new directory,
never a half-updated one; the directory appears only once complete (built under a
temporary name, then renamed).

Run ``python -m corral.runtime.hadoop`` to fetch ahead of time (``make setup`` does).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from corral.runtime import DeployError, file_lock

HADOOP_VERSION = "3.5.0"
# Stable names for the tool jars, as EMR's /usr/lib/hadoop-mapreduce/*.jar: steps refer to
# these, whatever version the pom resolved.
TOOL_JARS = {"hadoop-mapreduce-examples.jar": "hadoop-mapreduce-examples-", "hadoop-streaming.jar": "hadoop-streaming-"}


def default_cache() -> Path:
    """Shared by every Corral home on the host: the jars are the same for all of them."""
    configured = os.environ.get("CORRAL_RUNTIME_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "corral" / "runtime"


def _inputs() -> list[tuple[str, bytes]]:
    root = resources.files("corral.runtime")
    pom = root.joinpath("maven/pom.xml").read_bytes()
    java = sorted(_java_sources())
    return [("maven/pom.xml", pom), *[(str(p.relative_to(_java_root())), p.read_bytes()) for p in java]]


def _java_root() -> Path:
    return Path(str(resources.files("corral.runtime").joinpath("java")))


def _java_sources() -> list[Path]:
    return list(_java_root().rglob("*.java"))


def runtime_name(version: str = HADOOP_VERSION) -> str:
    digest = hashlib.sha256()
    for name, content in _inputs():
        digest.update(name.encode() + b"\0" + content)
    return f"hadoop-{version}-{digest.hexdigest()[:12]}"


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DeployError(f"`{name}` is required to fetch Hadoop {HADOOP_VERSION}: {hint}")
    return found


def _run(argv: list[str], what: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise DeployError(f"{what} failed (exit {result.returncode}):\n{tail}")


def _spark_jars(spark_home: str | None) -> Path:
    if spark_home is None:
        import pyspark  # noqa: PLC0415 - the control plane's and the tests' own Spark

        spark_home = str(Path(pyspark.__file__).parent)
    return Path(spark_home) / "jars"


def _build(target: Path, java_home: str | None, spark_home: str | None) -> None:
    mvn = _tool("mvn", "install Maven, e.g. `apt-get install maven`")
    pom = Path(str(resources.files("corral.runtime").joinpath("maven/pom.xml")))
    env_java = str(Path(java_home, "bin", "javac")) if java_home else None
    javac = env_java if env_java and Path(env_java).exists() else _tool(
        "javac", "install a JDK, e.g. `apt-get install openjdk-17-jdk-headless`")
    # Maven's and javac's temporary files stay in the directory being built (removed below),
    # not in the host's /tmp.
    scratch = target / ".tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch),
           "MAVEN_OPTS": f"{os.environ.get('MAVEN_OPTS', '')} -Djava.io.tmpdir={scratch}".strip()}
    _run([mvn, "-q", "-B", "-f", str(pom), "package", f"-Druntime.dir={target}"],
         f"fetching Hadoop {HADOOP_VERSION} from Maven Central", target, env)
    shutil.rmtree(target / "build", ignore_errors=True)
    classes = target / "classes"
    classes.mkdir()
    _run([javac, f"-J-Djava.io.tmpdir={scratch}", "-nowarn", "--release", "17", "-d", str(classes),
          "-cp", f"{target / 'lib'}/*:{_spark_jars(spark_home)}/*", *map(str, _java_sources())],
         "compiling Corral's Java classes (corral/runtime/java)",
         target, env)
    shutil.rmtree(scratch, ignore_errors=True)
    for alias, prefix in TOOL_JARS.items():
        jar = next((p for p in (target / "lib").glob(prefix + "*.jar") if p.name[len(prefix)].isdigit()), None)
        if jar is None:
            raise DeployError(f"the Hadoop runtime has no {prefix}*.jar; check corral/runtime/maven/pom.xml")
        (target / alias).symlink_to(Path("lib") / jar.name)


def ensure_hadoop(cache: Path | None = None, java_home: str | None = None, version: str = HADOOP_VERSION,
                  spark_home: str | None = None) -> Path:
    """The Hadoop home for ``version``, fetched on first use (concurrent callers wait).
    ``spark_home``: the Spark that Corral's Spark classes are compiled against (default:
    the installed pyspark). Raises DeployError when a tool is missing or the build fails."""
    if version != HADOOP_VERSION:
        raise DeployError(f"this Corral fetches Hadoop {HADOOP_VERSION} only (maven/pom.xml), not {version}")
    cache = cache or default_cache()
    home = cache / runtime_name(version)
    if home.is_dir():
        return home
    with file_lock(cache / f".{home.name}.lock"):
        if home.is_dir():
            return home
        building = cache / f".{home.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        try:
            _build(building, java_home, spark_home)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        building.rename(home)
    return home


if __name__ == "__main__":
    try:
        print(ensure_hadoop())
    except DeployError as exc:
        print(f"corral: error: {exc}", file=sys.stderr)
        sys.exit(1)
