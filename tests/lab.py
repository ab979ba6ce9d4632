"""The Windows/WSL/LAN network built from Linux network namespaces (see shared testing.md).

    win  vEthernet-WSL 198.18.0.1/20   lan0 198.19.0.1/24   (the Windows host; routes)
    wsl  eth0 198.18.5.20/20, default via 198.18.0.1       (the WSL2 VM, NAT mode)
    lan  eth0 198.19.0.50/24, 198.18.0.0/20 via 198.19.0.1 (another machine on the LAN)

Only 198.18.0.0/15 is used, and no namespace has a route out of the machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PREFIX = "wslnet-"
CLONE_NEWNET = 0x40000000
WIN_WSL_IP = "198.18.0.1"
WSL_IP = "198.18.5.20"
WIN_LAN_IP = "198.19.0.1"
LAN_IP = "198.19.0.50"
VPN_CLIENT = "198.18.16.2"
VPN_ROUTER = "198.18.16.1"
VPN_SERVER = "198.18.17.2"


@functools.cache
def _libc() -> ctypes.CDLL:
    """libc, loaded when a lab test enters a namespace: `CDLL(None)` raises TypeError on
    Windows (ctypes 3.10-3.13 evaluates `'/' in name`), so not at import."""
    return ctypes.CDLL(None, use_errno=True)


FAKE_WSL = r"""#!/bin/sh
# wsl.exe as the tests need it: runs the Linux command in the lab's WSL namespace. The
# distribution "Ubuntu" is stopped while a file `stopped` lies beside this script; a
# command run in it starts it (as the real wsl.exe does) and leaves a file `booted`.
here="$(dirname "$0")"
echo "$*" >> "$here/wsl-calls.txt"
if [ "$1" = "-l" ]; then
  if [ -e "$here/stopped" ]; then state=Stopped; else state=Running; fi
  case "$*" in
    *--running*) [ "$state" = Running ] && echo "Ubuntu" ;;
    *) printf '  NAME      STATE           VERSION\n* Ubuntu    %s         2\n' "$state" ;;
  esac
  exit 0
fi
if [ -e "$here/stopped" ]; then rm -f "$here/stopped"; touch "$here/booted"; fi
distro=""
while [ $# -gt 0 ]; do
  case "$1" in
    -d|--distribution) distro="$2"; shift 2 ;;
    -e|--exec) shift; break ;;
    *) shift ;;
  esac
done
if [ -n "$distro" ] && [ "$distro" != "Ubuntu" ]; then
  cat "$(dirname "$0")/no-distro.txt"  # wsl.exe's own messages are UTF-16LE
  exit 255
fi
exec ip netns exec @WSLNS@ "$@"
"""


def _is_root() -> bool:
    """os.geteuid does not exist on Windows (mypy --platform win32 reads this file too)."""
    if sys.platform == "win32":
        return False
    return os.geteuid() == 0


class LabUnavailable(Exception):
    pass


def empty_netns() -> tuple[str, ...]:
    """The prefix that runs a command in a new network namespace of its own (only `lo`):
    `unshare -n` as root, else `unshare -rn` (a user namespace, where the kernel allows
    unprivileged ones); LabUnavailable where neither can."""
    tried = []
    for prefix in (("unshare", "-n"), ("unshare", "-rn")):
        try:
            res = subprocess.run(
                [*prefix, "ip", "link", "set", "lo", "up"], capture_output=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LabUnavailable(f"cannot run unshare: {exc}") from None
        if res.returncode == 0:
            return prefix
        tried.append(f"{' '.join(prefix)}: {res.stderr.decode(errors='replace').strip()}")
    raise LabUnavailable("no network namespace of our own (" + "; ".join(tried) + ")")


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and res.returncode != 0:
        raise LabUnavailable(f"{' '.join(argv)}: {res.stderr.strip()}")
    return res


def _setns(fd: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def cleanup_leftovers() -> None:
    """Deletes namespaces that a crashed run left behind: those whose creating process
    (its pid is in the name) is gone. A lab that is still in use is left alone."""
    res = _run("ip", "netns", "list", check=False)
    for line in res.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        parts = name.split("-")
        pid = int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else 0
        if pid and os.path.exists(f"/proc/{pid}"):
            continue
        _run("ip", "netns", "del", name, check=False)


class Lab:
    def __init__(self) -> None:
        if not _is_root():
            raise LabUnavailable("the lab needs root (network namespaces)")
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                raise LabUnavailable(f"the lab needs {tool!r} (make test installs it)")
        cleanup_leftovers()
        tag = secrets.token_hex(3)
        self.tag = tag
        self.owner = f"{os.getpid()}-{tag}"  # wslnet-ROLE-PID-TAG: see cleanup_leftovers
        self.ns = {role: f"{PREFIX}{role}-{self.owner}" for role in ("win", "wsl", "lan")}
        self.win, self.wsl, self.lan = self.ns["win"], self.ns["wsl"], self.ns["lan"]
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise

    def _build(self) -> None:
        for ns in self.ns.values():
            _run("ip", "netns", "add", ns)
            self.sh(ns, "ip link set lo up")
        t = self.tag
        _run("ip", "link", "add", f"wa{t}", "type", "veth", "peer", "name", f"wb{t}")
        _run("ip", "link", "set", f"wa{t}", "netns", self.win)
        _run("ip", "link", "set", f"wb{t}", "netns", self.wsl)
        _run("ip", "link", "add", f"la{t}", "type", "veth", "peer", "name", f"lb{t}")
        _run("ip", "link", "set", f"la{t}", "netns", self.win)
        _run("ip", "link", "set", f"lb{t}", "netns", self.lan)
        self.sh(self.win, f"ip link set wa{t} name vEthernet-WSL")
        self.sh(self.win, f"ip link set la{t} name lan0")
        self.sh(self.wsl, f"ip link set wb{t} name eth0")
        self.sh(self.lan, f"ip link set lb{t} name eth0")
        self.sh(self.win, f"ip addr add {WIN_WSL_IP}/20 dev vEthernet-WSL")
        self.sh(self.win, f"ip addr add {WIN_LAN_IP}/24 dev lan0")
        self.sh(self.win, "ip link set vEthernet-WSL up")
        self.sh(self.win, "ip link set lan0 up")
        self.sh(self.win, "sysctl -qw net.ipv4.ip_forward=1")
        self.sh(self.wsl, f"ip addr add {WSL_IP}/20 dev eth0")
        self.sh(self.wsl, "ip link set eth0 up")
        self.sh(self.wsl, f"ip route add default via {WIN_WSL_IP}")
        self.sh(self.lan, f"ip addr add {LAN_IP}/24 dev eth0")
        self.sh(self.lan, "ip link set eth0 up")
        self.sh(self.lan, f"ip route add 198.18.0.0/20 via {WIN_LAN_IP}")
        # The Windows firewall: tests add drop/reject rules to this chain.
        for ns in self.ns.values():
            self.sh(ns, "nft add table inet wslnet")
            hook = "'{ type filter hook input priority 0; policy accept; }'"
            self.sh(ns, f"nft add chain inet wslnet input {hook}")

    def add_vpn(self) -> dict[str, str]:
        """A path with a narrow hop: vc (client, MTU 1500) -> vr (router) -> vs (server),
        the vr-vs link at MTU 1350, like a VPN between WSL and Windows."""
        names = {role: f"{PREFIX}{role}-{self.owner}" for role in ("vc", "vr", "vs")}
        if names["vc"] in self.ns.values():
            return names
        self.ns.update(names)
        for ns in names.values():
            _run("ip", "netns", "add", ns)
            self.sh(ns, "ip link set lo up")
        t = self.tag
        _run("ip", "link", "add", f"ca{t}", "type", "veth", "peer", "name", f"cb{t}")
        _run("ip", "link", "set", f"ca{t}", "netns", names["vc"])
        _run("ip", "link", "set", f"cb{t}", "netns", names["vr"])
        _run("ip", "link", "add", f"sa{t}", "type", "veth", "peer", "name", f"sb{t}")
        _run("ip", "link", "set", f"sa{t}", "netns", names["vr"])
        _run("ip", "link", "set", f"sb{t}", "netns", names["vs"])
        self.sh(
            names["vc"],
            f"ip link set ca{t} name eth0 && ip addr add {VPN_CLIENT}/24 dev eth0"
            f" && ip link set eth0 up && ip route add default via {VPN_ROUTER}",
        )
        self.sh(
            names["vr"],
            f"ip addr add {VPN_ROUTER}/24 dev cb{t} && ip link set cb{t} up"
            f" && ip addr add 198.18.17.1/24 dev sa{t} && ip link set sa{t} mtu 1350 up"
            " && sysctl -qw net.ipv4.ip_forward=1",
        )
        self.sh(
            names["vs"],
            f"ip addr add {VPN_SERVER}/24 dev sb{t} && ip link set sb{t} mtu 1350"
            " up && ip route add default via 198.18.17.1",
        )
        for ns in names.values():
            self.sh(ns, "nft add table inet wslnet")
            for hook in ("input", "output", "forward"):
                spec = f"'{{ type filter hook {hook} priority 0; policy accept; }}'"
                self.sh(ns, f"nft add chain inet wslnet {hook} {spec}")
        return names

    def fake_wsl_exe(self, folder: Path) -> dict[str, str]:
        """A wsl.exe that runs the Linux command in this lab's WSL namespace (for the
        forwarder running in `win`); returns the environment that puts it on PATH."""
        message = "There is no distribution with the supplied name.\r\n"
        (folder / "no-distro.txt").write_bytes(message.encode("utf-16-le"))
        exe = folder / "wsl.exe"
        exe.write_text(FAKE_WSL.replace("@WSLNS@", self.wsl))
        exe.chmod(0o755)
        return {"PATH": f"{folder}:{os.environ['PATH']}", "XDG_RUNTIME_DIR": str(folder)}

    def sh(self, ns: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run("ip", "netns", "exec", ns, "sh", "-c", command, check=check)

    def prefix(self, ns: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", ns)

    def firewall(self, ns: str, rule: str) -> None:
        """Adds an nft rule to ns's input chain, e.g. 'tcp dport 80 drop'."""
        self.sh(ns, f"nft add rule inet wslnet input {rule}")

    def flush_firewall(self, ns: str) -> None:
        self.sh(ns, "nft flush chain inet wslnet input")

    @contextlib.contextmanager
    def inside(self, ns: str) -> Iterator[None]:
        """Sockets made in this block live in ns (setns on this thread only)."""
        with open("/proc/thread-self/ns/net") as home, open(f"/var/run/netns/{ns}") as there:
            _setns(there.fileno())
            try:
                yield
            finally:
                _setns(home.fileno())

    def socket(self, ns: str, family: int = socket.AF_INET) -> socket.socket:
        with self.inside(ns):
            return socket.socket(family, socket.SOCK_STREAM)

    def destroy(self) -> None:
        for ns in self.ns.values():
            _run("ip", "netns", "del", ns, check=False)
