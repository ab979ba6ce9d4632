"""Where wslnet runs: WSL2 (and its networking mode), WSL1, a container, Linux, Windows."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Literal

from wslnet import system
from wslnet.facts import kernel, resolv, route

Kind = Literal["wsl2", "wsl1", "container", "linux", "windows"]
MODES = ("nat", "mirrored", "bridged", "virtioproxy", "consomme", "none", "wsl1")


@dataclass
class Environment:
    kind: Kind
    networking_mode: str | None  # nat, mirrored, ..., wsl1; None outside WSL
    mode_source: str  # how the mode was found
    distro: str | None
    kernel: str
    wsl_kernel: str  # wsl2 / wsl1 / other, from the kernel release alone
    container: str | None  # docker, podman, devcontainer, codespaces
    raw_probes: bool
    interfaces: dict[str, list[str]] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)

    @property
    def in_wsl(self) -> bool:
        return self.kind in ("wsl2", "wsl1") or (
            self.kind == "container" and self.wsl_kernel != "other"
        )

    @property
    def dns_tunnel(self) -> frozenset[str]:
        """The addresses of WSL's DNS tunnel here (its own resolver on lo)."""
        return resolv.tunnel_addresses(self.interfaces.get("lo", []))

    @property
    def vm_addresses(self) -> list[str]:
        """The VM's own (eth0) addresses: what Windows reaches in NAT mode."""
        return list(self.interfaces.get("eth0", []))

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("interfaces")
        return data


def _container() -> str | None:
    if system.env("CODESPACES") == "true":
        return "codespaces"
    if system.env("REMOTE_CONTAINERS") == "true":
        return "devcontainer"
    if system.exists("/.dockerenv"):
        return "docker"
    if system.exists("/run/.containerenv"):
        return "podman"
    cgroup = system.read_text("/proc/1/cgroup") or ""
    if any(word in cgroup for word in ("/docker/", "/kubepods", "/lxc/", "/libpod")):
        return "docker"
    return None


def _distro() -> str | None:
    name = system.env("WSL_DISTRO_NAME")
    if name:
        return name
    for line in (system.read_text("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def networking_mode(ifaces: dict[str, list[str]], evidence: list[str]) -> tuple[str, str]:
    """(mode, how it was found): wslinfo where it exists, else the live fingerprints."""
    answer = system.run(["wslinfo", "--networking-mode"], timeout=2)
    if answer and answer.strip().lower() in MODES:
        return answer.strip().lower(), "wslinfo --networking-mode"
    rules = route.mirrored_rules(system.run(["ip", "rule", "show"]) or "")
    if "loopback0" in ifaces or rules:
        if "loopback0" in ifaces:
            evidence.append("interface loopback0 exists (mirrored mode)")
        evidence += [f"ip rule: {r}" for r in rules[:3]]
        return "mirrored", "fingerprint: loopback0 / ip rule lookup 127,128"
    routes = system.routes()
    if route.default_gateways(routes):
        return "nat", "fingerprint: default route via the host, no mirrored rules"
    return "none", "fingerprint: no default route"


def detect() -> Environment:
    if sys.platform == "win32":
        return Environment("windows", None, "", None, "", "other", None, False)
    release = system.kernel_release()
    wsl_kernel = kernel.classify(release)
    evidence = [f"kernel release {release!r}"]
    markers = [
        m
        for m in ("/run/WSL", "/proc/sys/fs/binfmt_misc/WSLInterop", "/usr/bin/wslinfo")
        if system.exists(m)
    ]
    evidence += [f"{m} exists" for m in markers]
    ifaces = system.interfaces()
    container = _container()
    kind: Kind
    if container:
        kind = "container"
    elif wsl_kernel == "wsl2":
        kind = "wsl2"
    elif wsl_kernel == "wsl1":
        kind = "wsl1"
    else:
        kind = "linux"
    mode: str | None = None
    source = ""
    if kind == "wsl2" or (kind == "container" and wsl_kernel == "wsl2"):
        mode, source = networking_mode(ifaces, evidence)
    elif kind == "wsl1" or (kind == "container" and wsl_kernel == "wsl1"):
        mode, source = "wsl1", "WSL1 shares the Windows network stack"
    return Environment(
        kind=kind,
        networking_mode=mode,
        mode_source=source,
        distro=_distro(),
        kernel=release,
        wsl_kernel=wsl_kernel,
        container=container,
        raw_probes=system.is_root_or_raw_capable(),
        interfaces=ifaces,
        evidence=evidence,
    )
