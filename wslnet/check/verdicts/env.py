"""environment.kind: where wslnet runs."""

from __future__ import annotations

from wslnet.check.model import Finding, fail, info
from wslnet.verdict import Fix
from wslnet.where import Environment

_KINDS = {
    "wsl2": "WSL2",
    "wsl1": "WSL1",
    "linux": "Linux, not WSL",
    "windows": "Windows",
}


def environment(env: Environment) -> list[Finding]:
    what = f"a {env.container} container" if env.kind == "container" else _KINDS[env.kind]
    mode = f", {env.networking_mode} networking" if env.networking_mode else ""
    detail = f"kernel {env.kernel}" + (f"; mode from {env.mode_source}" if env.mode_source else "")
    ev: dict[str, object] = {"evidence": env.evidence, "distro": env.distro}
    findings = [info(f"Running in {what}{mode}", detail=detail, evidence=ev)]
    off = networking_off(env)
    if off is not None:
        findings.append(off)
    if env.kind == "container":
        findings.append(
            info(
                "The listeners shown are the container's, not the WSL VM's",
                detail="publish ports (docker run -p) or run wslnet in the WSL distro itself",
            )
        )
    return findings


def networking_off(env: Environment) -> Finding | None:
    """WSL2 with networkingMode=none, or any mode that left no eth0: networking is off
    by configuration (not a host that is gone, not a route to repair)."""
    if env.kind != "wsl2" or (env.networking_mode != "none" and "eth0" in env.interfaces):
        return None
    said = env.networking_mode == "none" and env.mode_source.startswith("wslinfo")
    why = "networkingMode=none" if said else "no eth0 interface"
    return fail(
        f"Networking is off in this WSL VM ({why}): only loopback exists",
        detail="nothing outside the VM is reachable, by configuration; the host and DNS "
        "checks do not apply",
        fix=Fix(
            "remove networkingMode=none (or set nat or mirrored) under [wsl2] in "
            "%UserProfile%\\.wslconfig, then run `wsl --shutdown` from Windows"
        ),
        evidence={"mode": env.networking_mode, "interfaces": sorted(env.interfaces)},
    )
