"""SSH to registered hosts: pinned host keys, reused connections, bounded commands.

Built on paramiko (pure Python, so the control plane needs no OpenSSH client, and a
host's private key is used from memory: it is stored encrypted and never written to
disk in clear, which the system ``ssh`` would need). One ``SshPool`` per process keeps a
connection per (address, port, user) and opens a channel per command, as OpenSSH's
ControlMaster does (SkyPilot's ``command_runner.py``).

Rules, after SkyPilot and OpenSSH:
- The host key is pinned: the first connection records it (``scan_host_key``) or the
  user gives its fingerprint; a different key later raises ``HostKeyChanged`` and nothing
  is sent to that server (not even the user name's authentication).
- Transient failures (refused, reset, timed out, banner lost) are retried with backoff
  inside one overall deadline; authentication and host-key failures are not.
- Every remote command runs under the remote ``timeout`` (coreutils), so a command past
  its limit is killed on the host, not only abandoned here; a failure carries the
  command's exit code and stderr tail (``RemoteCommandFailed``).
- Secrets travel on stdin or as files written over SFTP with mode 0600, never in a
  command line (``ps`` on the host shows command lines).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import posixpath
import secrets
import shlex
import socket
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NoReturn, TypeVar

import paramiko

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds for TCP connect, banner and authentication, per attempt
CONNECT_DEADLINE = 30.0  # seconds for all attempts of one connection
# Keepalive packets keep NAT and firewall state of an idle connection alive. They do not
# find out a vanished host (paramiko asks for no reply): a reused connection to one fails
# at ``open_session`` (CONNECT_TIMEOUT), and the command is then retried on a new one.
KEEPALIVE_SECONDS = 10
STDERR_TAIL = 2000  # characters of stderr kept in an error


class SshError(Exception):
    """Base of every error this module raises; the message names the host."""


class HostUnreachable(SshError):
    """The host did not answer SSH within the deadline (network down, sshd stopped)."""


class HostKeyChanged(SshError):
    """The host presented a key other than the pinned one; nothing was sent to it.
    ``pinned`` is the pinned fingerprint (or key type when only the key is pinned),
    ``seen`` the fingerprint the host presented now (both "SHA256:...")."""

    def __init__(self, message: str, pinned: str | None = None, seen: str | None = None):
        self.pinned, self.seen = pinned, seen
        super().__init__(message)


class AuthenticationFailed(SshError):
    """The host refused the key (or no key was available)."""


class CommandTimedOut(SshError):
    """The command gave no exit status within its limit (the remote ``timeout`` kills it there)."""


class RemoteCommandFailed(SshError):
    def __init__(self, host: str, command: str, exit_code: int, stderr: str):
        self.host, self.command, self.exit_code, self.stderr = host, command, exit_code, stderr
        tail = stderr.strip()[-STDERR_TAIL:] or "nothing on stderr"
        super().__init__(f"{host}: `{_short(command)}` exited with {exit_code}: {tail}")


@dataclass(frozen=True)
class SshTarget:
    """Where and how to log in. ``private_key`` is the key's text (OpenSSH or PEM), held
    in memory only; None uses the control plane's own ``~/.ssh/id_ed25519|id_ecdsa|id_rsa``.
    ``host_key`` ("<type> <base64>", known_hosts form) or ``host_key_fingerprint``
    ("SHA256:...") pins the server; with neither, any key is accepted (only
    ``scan_host_key`` does that, to record the first one seen)."""

    address: str
    port: int = 22
    user: str = "root"
    private_key: str | None = None
    host_key: str | None = None
    host_key_fingerprint: str | None = None

    @property
    def label(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"

    def __repr__(self) -> str:  # never print the key
        return f"SshTarget({self.label})"


@dataclass(frozen=True)
class RemoteResult:
    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:<base64 without padding>`` of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def load_private_key(text: str) -> paramiko.PKey:
    """Parse a private key of any type paramiko knows; ``ValueError`` names what is wrong."""
    errors = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except paramiko.PasswordRequiredException as exc:
            raise ValueError("the private key is encrypted with a passphrase; give an unencrypted key") from exc
        except (paramiko.SSHException, ValueError, IndexError) as exc:
            errors.append(f"{cls.__name__}: {exc}")
    raise ValueError("not an OpenSSH or PEM private key (ed25519, ecdsa or rsa)")


def public_key_of(text: str) -> str:
    key = load_private_key(text)
    return known_hosts_line(key)


def _default_keys() -> list[paramiko.PKey]:
    keys = []
    for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
        path = Path.home() / ".ssh" / name
        if path.is_file():
            try:
                keys.append(load_private_key(path.read_text()))
            except (OSError, ValueError):
                continue
    return keys


def _short(command: str, limit: int = 160) -> str:
    one_line = " ".join(command.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


def _closed(sftp: paramiko.SFTPClient) -> bool:
    """Whether an SFTP error came from the connection (paramiko raises OSError("Socket is
    closed") then) rather than from the file."""
    channel = sftp.get_channel()
    return channel is None or channel.closed or not channel.get_transport().is_active()


T = TypeVar("T")
_TRANSIENT = (socket.timeout, TimeoutError, ConnectionError, EOFError, OSError, paramiko.SSHException)


class SshPool:
    """Connections reused per target; thread-safe. ``close_all`` at shutdown."""

    def __init__(self, connect_timeout: float = CONNECT_TIMEOUT, connect_deadline: float = CONNECT_DEADLINE):
        self.connect_timeout = connect_timeout
        self.connect_deadline = connect_deadline
        self._transports: dict[tuple[str, int, str], paramiko.Transport] = {}
        self._locks: dict[tuple[str, int, str], threading.Lock] = {}
        self._guard = threading.Lock()

    # -- connections ------------------------------------------------------------------------

    def _lock(self, key: tuple[str, int, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _open(self, target: SshTarget, pin: bool = True, deadline: float | None = None) -> paramiko.Transport:
        return self._retrying(target, deadline, lambda: self._open_once(target, pin))

    def _retrying(self, target: SshTarget, deadline: float | None, attempt: Callable[[], T]) -> T:
        """``attempt()`` again after transient failures (``_TRANSIENT``), backing off from
        0.5 s to 5 s, for ``deadline`` seconds (default: the pool's connect deadline); then
        ``HostUnreachable`` with the last error. Other errors (a changed host key, a refused
        key) propagate at once."""
        limit = self.connect_deadline if deadline is None else deadline
        until = time.monotonic() + limit
        delay, last = 0.5, ""
        while True:
            try:
                return attempt()
            except _TRANSIENT as exc:
                last = f"{type(exc).__name__}: {exc}".rstrip(": ")
            if time.monotonic() + delay >= until:
                raise HostUnreachable(f"{target.label}: no SSH answer within {limit:.0f} s ({last})")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _open_once(self, target: SshTarget, pin: bool) -> paramiko.Transport:
        sock = socket.create_connection((target.address, target.port), timeout=self.connect_timeout)
        try:
            transport = paramiko.Transport(sock)
        except BaseException:
            sock.close()  # a Transport that could not be made does not close its socket
            raise
        try:
            transport.banner_timeout = self.connect_timeout
            transport.auth_timeout = self.connect_timeout
            transport.start_client(timeout=self.connect_timeout)
            server_key = transport.get_remote_server_key()
            if pin:
                self._verify_host_key(target, server_key)
            try:
                keys = [load_private_key(target.private_key)] if target.private_key else _default_keys()
            except ValueError as exc:  # a stored key that does not parse is not a network problem
                raise AuthenticationFailed(f"{target.label}: the host's private key is unusable: {exc}") from exc
            if not keys:
                raise AuthenticationFailed(f"{target.label}: no private key given and none in ~/.ssh")
            for key in keys:
                try:
                    transport.auth_publickey(target.user, key)
                    break
                except paramiko.AuthenticationException:
                    continue
            if not transport.is_authenticated():
                raise AuthenticationFailed(f"{target.label}: the host refused the key for user {target.user}")
            transport.set_keepalive(KEEPALIVE_SECONDS)
            return transport
        except BaseException:
            transport.close()
            raise

    @staticmethod
    def _verify_host_key(target: SshTarget, server_key: paramiko.PKey) -> None:
        seen = fingerprint(server_key)
        pinned = target.host_key_fingerprint
        if target.host_key:
            if known_hosts_line(server_key) != target.host_key.strip():
                was = pinned or target.host_key.split()[0]
                raise HostKeyChanged(f"{target.label}: the host key changed (pinned {was}, now {seen}); "
                                     "refusing to connect", pinned=was, seen=seen)
        elif pinned:
            if seen != pinned:
                raise HostKeyChanged(f"{target.label}: the host key {seen} is not the pinned {pinned}; "
                                     "refusing to connect", pinned=pinned, seen=seen)
        else:
            raise HostKeyChanged(f"{target.label}: no host key pinned; refusing to connect", seen=seen)

    def transport(self, target: SshTarget, deadline: float | None = None) -> paramiko.Transport:
        """The pooled connection to ``target``, opened within ``deadline`` seconds (default
        ``connect_deadline``) when there is none or it closed."""
        key = (target.address, target.port, target.user)
        with self._lock(key):
            current = self._transports.get(key)
            if current is not None and current.is_active():
                return current
            if current is not None:
                current.close()
            fresh = self._open(target, deadline=deadline)
            self._transports[key] = fresh
            return fresh

    def forget(self, target: SshTarget) -> None:
        key = (target.address, target.port, target.user)
        with self._lock(key):
            current = self._transports.pop(key, None)
        if current is not None:
            current.close()

    def close_all(self) -> None:
        with self._guard:
            transports, self._transports = list(self._transports.values()), {}
        for t in transports:
            t.close()

    def scan_host_key(self, target: SshTarget, deadline_seconds: float | None = None) -> tuple[str, str]:
        """The host's key as first seen: (known_hosts line, SHA256 fingerprint). Nothing
        but the SSH handshake is sent. Retries transient failures for ``deadline_seconds``
        (default: the pool's connect deadline), then raises ``HostUnreachable``."""
        def handshake() -> tuple[str, str]:
            sock = socket.create_connection((target.address, target.port), timeout=self.connect_timeout)
            transport = paramiko.Transport(sock)
            try:
                transport.banner_timeout = self.connect_timeout
                transport.start_client(timeout=self.connect_timeout)
                key = transport.get_remote_server_key()
                return known_hosts_line(key), fingerprint(key)
            finally:
                transport.close()

        return self._retrying(target, deadline_seconds, handshake)

    # -- commands and files -------------------------------------------------------------------

    def run(self, target: SshTarget, command: str, *, timeout: float = 60.0, stdin: bytes | None = None,
            check: bool = True, connect_deadline: float | None = None) -> RemoteResult:
        """Run ``command`` with bash on the host, killed there after ``timeout`` seconds;
        a new connection is given ``connect_deadline`` seconds (default: the pool's).

        Raises ``RemoteCommandFailed`` (exit code ≠ 0 with ``check``; exit 124/137 means the
        remote timeout killed it), ``HostUnreachable``, ``HostKeyChanged``,
        ``AuthenticationFailed``, ``CommandTimedOut``. A connection that broke is reopened
        once (so commands must be safe to run twice, as all of Corral's are).
        """
        # --norc: the login shell sshd starts has read the user's ~/.bashrc already (Debian's
        # bash does for SSH commands), and so would this bash, as `timeout` execs it with the
        # shell level reset: twice the start-up, and a .bashrc tool that takes a lock (pyenv
        # rehash) would contend with itself. What the first one exported is inherited.
        wrapped = f"timeout --kill-after=5 {max(1, int(timeout))} bash --norc --noprofile -c {shlex.quote(command)}"
        for attempt in (1, 2):
            transport = self.transport(target, deadline=connect_deadline)
            try:
                result = self._exec(transport, wrapped, stdin, timeout + 15)
                break
            except CommandTimedOut as exc:
                # No exit status: most often the host vanished mid-command. The connection
                # is not reused, so the next call finds out at once.
                self.forget(target)
                raise CommandTimedOut(f"{target.label}: `{_short(command)}` {exc}") from exc
            except (EOFError, OSError, paramiko.SSHException) as exc:
                self.forget(target)
                if attempt == 2:
                    raise HostUnreachable(f"{target.label}: the connection broke during `{_short(command)}`: {exc}") from exc
        if check and result.exit_code != 0:
            raise RemoteCommandFailed(target.label, command, result.exit_code, result.stderr.decode("utf-8", "replace"))
        return result

    @staticmethod
    def _exec(transport: paramiko.Transport, command: str, stdin: bytes | None, limit: float) -> RemoteResult:
        channel = transport.open_session(timeout=CONNECT_TIMEOUT)
        try:
            channel.settimeout(1.0)
            channel.exec_command(command)
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + limit
            while True:
                progressed = False
                while channel.recv_ready():
                    out += channel.recv(65536)
                    progressed = True
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)
                    progressed = True
                if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                    break
                if time.monotonic() > deadline:
                    raise CommandTimedOut(f"no exit status within {limit:.0f} s")
                if not progressed:
                    if not transport.is_active():
                        raise EOFError("the connection closed")
                    time.sleep(0.02)
            return RemoteResult(channel.recv_exit_status(), bytes(out), bytes(err))
        finally:
            channel.close()

    def read_clock(self, target: SshTarget, clock: Callable[[], float] = time.time,
                   limit: float = 10.0) -> tuple[float, float, float]:
        """(host's epoch time, ``clock()`` just before asking, just after the answer).

        The host's shell first says it is ready and then waits for a line; only that
        line's round trip is timed, so the login shell's start-up (a ``.bashrc`` may take
        a second) does not count as network delay. Raises ``SshError`` when the host
        does not answer with a time within ``limit`` seconds.
        """
        transport = self.transport(target)
        channel = transport.open_session(timeout=CONNECT_TIMEOUT)
        try:
            channel.settimeout(limit)
            channel.exec_command(f"timeout {int(limit)} sh -c 'echo corral-ready; read line; date +%s.%N'")
            seen = b""
            try:
                while b"corral-ready\n" not in seen:
                    chunk = channel.recv(4096)
                    if not chunk:
                        raise SshError(f"{target.label}: the clock command ended early: {seen[-200:]!r}")
                    seen += chunk
                sent = clock()
                channel.sendall(b"\n")
                answer = b""
                while b"\n" not in answer:
                    chunk = channel.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                received = clock()
            except socket.timeout as exc:
                raise SshError(f"{target.label}: no time from the host within {limit:.0f} s") from exc
            try:
                return float(answer.split()[0]), sent, received
            except (IndexError, ValueError) as exc:
                raise SshError(f"{target.label}: `date +%s.%N` answered {answer[:80]!r}") from exc
        finally:
            channel.close()

    def _sftp(self, target: SshTarget, deadline: float | None = None) -> paramiko.SFTPClient:
        try:
            sftp = paramiko.SFTPClient.from_transport(self.transport(target, deadline=deadline))
        except (EOFError, OSError, paramiko.SSHException) as exc:
            self.forget(target)
            raise HostUnreachable(f"{target.label}: cannot open SFTP: {exc}") from exc
        if sftp is None:
            raise SshError(f"{target.label}: SFTP is not available")
        sftp.get_channel().settimeout(CONNECT_TIMEOUT * 3)  # a vanished host fails the call, not hangs it
        return sftp

    def put(self, target: SshTarget, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        """Write ``data`` to ``remote_path`` atomically, never readable beyond ``mode``.

        SFTP creates a file with the server's default mode (0644 after the usual umask)
        and only then takes a chmod: another user could open it in between and read what
        is written later. So the file is written inside a fresh directory of mode 0700
        beside the target (nobody else can enter it), chmod-ed, then renamed into place.
        Raises ``SshError`` (``HostUnreachable`` when the connection broke)."""
        parent, name = posixpath.split(remote_path)
        private = posixpath.join(parent or ".", f".put-{secrets.token_hex(6)}")
        sftp = self._sftp(target)
        try:
            sftp.mkdir(private, mode=0o700)
            try:
                temporary = posixpath.join(private, name)
                with sftp.open(temporary, "wb") as handle:
                    handle.chmod(mode)
                    handle.write(data)
                sftp.posix_rename(temporary, remote_path)
            finally:
                try:
                    sftp.rmdir(private)
                except OSError:
                    pass
        except (EOFError, OSError, paramiko.SSHException) as exc:
            self._sftp_failure(target, sftp, exc, f"writing {remote_path}", f"cannot write {remote_path}")
        finally:
            sftp.close()

    def get_tree(self, target: SshTarget, remote_dir: str, local_dir: Path) -> int:
        """Copy the regular files under ``remote_dir`` to ``local_dir`` (created), keeping
        relative paths; symbolic links and special files are skipped, so nothing outside
        ``remote_dir`` is read. Returns the number of files copied (0 when ``remote_dir``
        does not exist). Streams each file: a node's logs may be large."""
        sftp = self._sftp(target)
        copied = 0
        try:
            pending = [""]
            while pending:
                rel = pending.pop()
                try:
                    entries = sftp.listdir_attr(posixpath.join(remote_dir, rel) if rel else remote_dir)
                except FileNotFoundError:
                    continue
                for entry in entries:
                    child = posixpath.join(rel, entry.filename) if rel else entry.filename
                    mode = entry.st_mode or 0
                    if stat.S_ISDIR(mode):
                        pending.append(child)
                    elif stat.S_ISREG(mode):
                        dest = local_dir / child
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        try:
                            sftp.get(posixpath.join(remote_dir, child), str(dest))
                            copied += 1
                        except FileNotFoundError:
                            continue  # removed meanwhile (a rotated log)
        except (EOFError, OSError, paramiko.SSHException) as exc:
            self._sftp_failure(target, sftp, exc, f"copying {remote_dir}", f"cannot copy {remote_dir}")
        finally:
            sftp.close()
        return copied

    def _sftp_failure(self, target: SshTarget, sftp: paramiko.SFTPClient, exc: BaseException, doing: str,
                      refused: str) -> NoReturn:
        """Raise the error an SFTP failure means: ``HostUnreachable`` when the connection
        broke (its transport is dropped, so the next call reconnects), else ``SshError``
        (the host refused the file operation)."""
        broken = isinstance(exc, (EOFError, socket.timeout, paramiko.SSHException)) or _closed(sftp)
        if broken:
            self.forget(target)
            raise HostUnreachable(f"{target.label}: the connection broke {doing}: {exc}") from exc
        raise SshError(f"{target.label}: {refused}: {exc}") from exc
