"""/proc/net/{tcp,tcp6,udp,udp6}: the sockets of this network namespace."""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Literal

from wslnet.facts import Problem

Proto = Literal["tcp", "udp"]
Family = Literal["ipv4", "ipv6"]
TCP_LISTEN = 0x0A
UDP_UNCONNECTED = 0x07  # what /proc shows for a bound, unconnected UDP socket
TCP_SYN_RECV = 0x03


@dataclass(frozen=True)
class SocketEntry:
    proto: Proto
    family: Family
    address: str
    port: int
    remote: str
    remote_port: int
    state: int
    uid: int
    inode: int

    @property
    def listening(self) -> bool:
        if self.proto == "tcp":
            return self.state == TCP_LISTEN
        return self.state == UDP_UNCONNECTED and self.remote_port == 0


def _hex_address(text: str, family: Family) -> tuple[str, int]:
    host, _, port = text.partition(":")
    raw = bytes.fromhex(host)
    if family == "ipv4":
        if len(raw) != 4:
            raise ValueError("not a 4-byte address")
        # The kernel prints the address as one host-order 32-bit word.
        addr = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(host, 16)))
    else:
        if len(raw) != 16:
            raise ValueError("not a 16-byte address")
        words = struct.unpack("<4I", raw)
        addr = socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words))
        mapped = ipaddress.IPv6Address(addr).ipv4_mapped
        if mapped is not None:
            addr = f"::ffff:{mapped}"
    return addr, int(port, 16)


def parse(text: str, proto: Proto, family: Family) -> tuple[list[SocketEntry], list[Problem]]:
    """Parses one /proc/net file. Lines that do not parse come back as problems."""
    entries: list[SocketEntry] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] == "sl":
            continue
        if not fields[0].endswith(":") or len(fields) < 10:
            problems.append(Problem(number, line, "not a socket line"))
            continue
        try:
            addr, port = _hex_address(fields[1], family)
            raddr, rport = _hex_address(fields[2], family)
            entries.append(
                SocketEntry(
                    proto=proto,
                    family=family,
                    address=addr,
                    port=port,
                    remote=raddr,
                    remote_port=rport,
                    state=int(fields[3], 16),
                    uid=int(fields[7]),
                    inode=int(fields[9]),
                )
            )
        except (ValueError, OSError, struct.error) as exc:
            problems.append(Problem(number, line, f"unreadable socket line ({exc})"))
    return entries, problems


def in_listening_part(line: bytes) -> bool:
    """Whether a /proc/net/tcp{,6} line may still be in the part that lists listening
    sockets. The kernel writes that part first, then the established hash (TIME_WAIT
    included): net/ipv4/tcp_ipv4.c tcp_get_idx (listening_get_first, then
    established_get_first), shared by tcp6. Kernels before 4.4 listed each listener's
    SYN_RECV requests after it, so those do not end the part."""
    fields = line.split(maxsplit=4)
    try:
        return len(fields) > 3 and int(fields[3], 16) in (TCP_LISTEN, TCP_SYN_RECV)
    except ValueError:
        return False


# The /proc/net files by name: what `wslnet listeners` reads, and what one shell command
# through wsl.exe prints between "@@ NAME" markers (auto-forward, check on Windows).
FILES: dict[str, tuple[Proto, Family]] = {
    "tcp": ("tcp", "ipv4"),
    "tcp6": ("tcp", "ipv6"),
    "udp": ("udp", "ipv4"),
    "udp6": ("udp", "ipv6"),
}
SNAPSHOT_SCRIPT = (
    f"for f in {' '.join(FILES)}; do " + 'echo "@@ $f"; cat /proc/net/$f 2>/dev/null; done'
)


def split_sections(text: str) -> dict[str, list[str]]:
    """The lines under each "@@ NAME" marker."""
    parts: dict[str, list[str]] = {}
    name: str | None = None
    for line in text.splitlines():
        if line.startswith("@@ "):
            name = line[3:].strip()
            parts[name] = []
        elif name is not None:
            parts[name].append(line)
    return parts


def parse_snapshot(parts: dict[str, list[str]]) -> list[SocketEntry]:
    """The /proc/net files of one snapshot, parsed file by file."""
    entries: list[SocketEntry] = []
    for fname, lines in parts.items():
        if fname in FILES:
            proto, family = FILES[fname]
            found, _ = parse("\n".join(lines), proto, family)
            entries += found
    return entries
