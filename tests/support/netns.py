"""Separate network hosts on one machine: a network namespace per host, all on one private switch.

The switch (a bridge) lives in a namespace of its own, and every host's link (a veth pair) joins
it there, so nothing is added to the machine's own network: no address, route or interface of
the root namespace changes, and the hosts reach only each other (their subnet has no gateway).
The test process talks to Redis through a unix socket, which needs no network at all.

Names carry a per-run token, so runs never collide, and ``Network.close`` kills every process
left in the hosts and deletes the namespaces (deleting one deletes its links) even after a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

IP = shutil.which("ip") or "/usr/sbin/ip"
SS = shutil.which("ss") or "/usr/bin/ss"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
SUBNET = "10.218.0"  # private (RFC 1918), and reachable only inside the switch's namespaces
PREFIX_LENGTH = 24


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=30)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (not root, no ``ip``), or None when they can."""
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CI runs as root)"
    for tool in (IP, SS, UNSHARE):
        if not Path(tool).exists():
            return f"{tool} is missing"
    probe = f"pjprobe-{uuid.uuid4().hex[:8]}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as error:
        return f"cannot create a network namespace: {error.stderr.decode().strip()}"
    _ip("netns", "del", probe)
    return None


@dataclass
class Host:
    """One host: a namespace with a link ``eth0`` to the switch, and an address of its own."""

    name: str
    namespace: str
    address: str
    switch_port: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host: its network, and its own hostname (so worker names say the host)."""
        return [IP, "netns", "exec", self.namespace, UNSHARE, "--uts", "--",
                "sh", "-c", 'hostname "$0" && exec "$@"', self.name, *argv]  # fmt: skip

    def start(self, argv: Sequence[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` on this host, its output into ``log``."""
        with log.open("ab") as output:
            process = subprocess.Popen(
                self.command(argv), env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes.append(process)
        return process

    def pids(self) -> list[int]:
        """Every process in this host's namespace."""
        listed = subprocess.run([IP, "netns", "pids", self.namespace], check=False, capture_output=True, timeout=30)
        return [int(pid) for pid in listed.stdout.split()]

    def kill_everything(self) -> int:
        """SIGKILL every process of the host at once, as when it loses power; how many there were."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        return len(pids)

    def abort_connections_to(self, address: str) -> None:
        """Abort this host's open TCP connections to ``address`` (what a router's reset would do)."""
        subprocess.run([IP, "netns", "exec", self.namespace, SS, "-K", "dst", address],
                       check=False, capture_output=True, timeout=30)  # fmt: skip


class Network:
    """Hosts on one switch; ``cut``/``restore`` pull and replug a host's cable at the switch."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex[:8]
        self.switch = f"pj-{self.token}-switch"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []
        try:
            self._add_namespace(self.switch)
            _ip("-n", self.switch, "link", "add", "switch", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "switch", "up")
        except BaseException:
            self.close()
            raise

    def _add_namespace(self, name: str) -> None:
        self._namespaces.append(name)
        _ip("netns", "add", name)
        _ip("-n", name, "link", "set", "lo", "up")

    def add_host(self, name: str) -> Host:
        """A new host on the switch, with the next free address."""
        namespace = f"pj-{self.token}-{name}"
        self._add_namespace(namespace)
        address = f"{SUBNET}.{len(self.hosts) + 1}"
        port = f"to-{name}"
        _ip("-n", namespace, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", self.switch)
        _ip("-n", namespace, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        _ip("-n", self.switch, "link", "set", port, "master", "switch")
        _ip("-n", self.switch, "link", "set", port, "up")
        host = Host(name=name, namespace=namespace, address=address, switch_port=port)
        self.hosts[name] = host
        return host

    def cut(self, host: Host) -> None:
        """Unplug the host's cable at the switch: it keeps running and sees its link down."""
        _ip("-n", self.switch, "link", "set", host.switch_port, "down")

    def restore(self, host: Host) -> None:
        """Plug the host's cable back in."""
        _ip("-n", self.switch, "link", "set", host.switch_port, "up")

    def block(self, host: Host, destination: Host) -> None:
        """``host`` loses its route to ``destination`` (refused at once) and its open connections to it."""
        _ip("-n", host.namespace, "route", "add", "prohibit", f"{destination.address}/32")
        host.abort_connections_to(destination.address)

    def unblock(self, host: Host, destination: Host) -> None:
        """``host`` reaches ``destination`` again."""
        _ip("-n", host.namespace, "route", "del", "prohibit", f"{destination.address}/32")

    def close(self) -> None:
        """Kill whatever still runs in the hosts and delete every namespace; never raises."""
        for host in self.hosts.values():
            try:
                host.kill_everything()
            except (OSError, subprocess.SubprocessError):
                continue
        for namespace in reversed(self._namespaces):
            subprocess.run([IP, "netns", "del", namespace], check=False, capture_output=True, timeout=30)
