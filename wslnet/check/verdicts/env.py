"""environment.kind: where wslnet runs."""

from __future__ import annotations

from wslnet.check.model import Finding, info
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
    if env.kind == "container":
        findings.append(
            info(
                "The listeners shown are the container's, not the WSL VM's",
                detail="publish ports (docker run -p) or run wslnet in the WSL distro itself",
            )
        )
    return findings
