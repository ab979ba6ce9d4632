"""windows.* (but windows.firewall): the Windows side's verdicts, pure: facts in
(windows_facts.WindowsFacts, the WSL ports that matter), findings out. Errors speak
Windows: "as Administrator", never sudo."""

from __future__ import annotations

import ipaddress

from wslnet.check.model import Finding, fail, info, ok, warn
from wslnet.check.verdicts.config import mode_mismatch
from wslnet.check.windows_facts import (
    CONNECT_WAIT_MS,
    PowerShellFacts,
    ToolOutput,
    WindowsFacts,
    WslFacts,
)
from wslnet.facts.windows import PortProxy
from wslnet.facts.wslconfig import WslConfig
from wslnet.verdict import Action, Fix

PortKey = tuple[str, int]  # ("tcp" | "udp", port)


RELAY = "wslrelay.exe"  # WSL's relay on Windows (section 9)


def unreadable(what: str, out: ToolOutput) -> Finding | None:
    """A tool that could not run, or whose answer could not be read: said, never guessed."""
    if out.code == 124 and out.argv[0] == "powershell.exe":
        return warn(
            f"unknown: PowerShell did not answer within {out.timeout:g} s",
            detail=f"{what} comes from PowerShell; a cold powershell.exe can take seconds "
            "to start: run the check again",
        )
    if out.failed:
        return warn(f"Could not ask Windows for {what}", detail=out.failed)
    if out.problems:
        return warn(
            f"Could not read {out.argv[0]} output ({what})",
            detail=f"{len(out.problems)} lines did not parse: {out.problems[0]}",
            evidence={"argv": list(out.argv), "raw": out.text[:4000]},
        )
    return None


# One line, so `net start` runs even when `net stop` fails (the service already stopped):
# the script checks the exit code after each line, and a stop without a start would leave
# WSL and Docker without NAT.
WINNAT_RESTART = "net stop winnat; net start winnat"
WINNAT_WARNING = (
    "warning: restarting WinNAT drops every NAT connection on Windows (WSL's and "
    "Docker's) for a moment"
)


def winnat_restart() -> Action:
    """Restarting WinNAT frees the ranges it reserved (not those marked `*`, which an
    administrator added) until its next reservation (wsl-networking.md section 9)."""
    return Action("windows-admin", "restart WinNAT to free the port ranges it reserved",
                  (WINNAT_RESTART,), (), "nothing to undo: a restart changes no setting",
                  note=WINNAT_WARNING)  # fmt: skip


def excluded_ports(ports: list[PortKey], facts: WindowsFacts) -> list[Finding]:
    keys = ["excluded-tcp"] + (["excluded-udp"] if any(p == "udp" for p, _ in ports) else [])
    for key in keys:
        bad = unreadable("its reserved port ranges", facts.outputs[key])
        if bad is not None:
            return [bad]
    findings = []
    for proto, port in ports:
        hit = next((r for r in facts.excluded if r.proto == proto and port in r), None)
        if hit is None:
            continue
        span = f"{hit.start}-{hit.end}"
        findings.append(
            fail(
                f"{proto.upper()} port {port} is reserved by Windows (range {span})",
                detail="Hyper-V and WinNAT reserve port ranges at boot (`*`: an "
                "administrator did); nothing on Windows can listen there, so WSL's relay "
                "cannot forward it",
                fix=Fix(
                    "as Administrator: restart WinNAT to free the dynamic ranges, or reserve "
                    "the port for yourself so they never take it again; or use another port",
                    [
                        "net stop winnat",
                        "net start winnat",
                        f"netsh int ipv4 add excludedportrange protocol={proto} "
                        f"startport={port} numberofports=1",
                    ],
                    "windows-admin",
                    None if hit.administered else winnat_restart(),
                ),
                evidence={"range": span, "administered": hit.administered},
            )
        )
    if findings:
        return findings
    shown = ", ".join(str(p) for _, p in ports[:10]) or "no ports of interest"
    return [ok(f"No port of interest is in a range Windows reserves ({shown})")]


def _wsl_network(vm_address: str | None) -> ipaddress.IPv4Network | None:
    """The VM's subnet as WSL makes it (a /20), where old portproxy targets lived too."""
    try:
        return ipaddress.IPv4Network(f"{vm_address}/20", strict=False) if vm_address else None
    except ValueError:
        return None


def portproxy(
    facts: WindowsFacts,
    vm_address: str | None,
    relay_ports: set[int],
    ps: PowerShellFacts | None = None,
) -> list[Finding]:
    bad = unreadable("its portproxy rules", facts.outputs["portproxy"])
    if bad is not None:
        return [bad]
    if not facts.portproxy:
        return [ok("No netsh portproxy rules")]
    network = _wsl_network(vm_address)
    findings = ip_helper(facts, ps) if ps is not None else []
    for rule in facts.portproxy:
        delete = (
            f"netsh interface portproxy delete {rule.kind} listenport={rule.listen_port} "
            f"listenaddress={rule.listen_address}"
        )
        where = f"{rule.listen_address}:{rule.listen_port} -> {rule.connect_address}"
        try:
            target = ipaddress.ip_address(rule.connect_address)
        except ValueError:
            target = None
        wsl_like = target is not None and (
            (network is not None and target in network)
            or target in ipaddress.ip_network("172.16.0.0/12")
        )
        if vm_address and wsl_like and rule.connect_address != vm_address:
            forward = (
                f"wslnet forward {rule.listen_address}:{rule.listen_low}=wsl:{rule.connect_low}"
            )
            findings.append(
                fail(
                    f"portproxy {where} is stale: the WSL VM is at {vm_address} now",
                    detail="portproxy rules stay in the registry across reboots, and the VM "
                    "gets a new address when WSL restarts",
                    fix=Fix(
                        "delete it (as Administrator), and forward with wslnet, which follows "
                        "the VM's address",
                        [delete, forward],
                        "windows-admin",
                        readd_portproxy(rule, vm_address),
                    ),
                    evidence={"rule": rule.__dict__},
                )
            )
            continue
        overlap = sorted(p for p in relay_ports if rule.covers(p))
        if overlap and rule.listen_address in ("0.0.0.0", "127.0.0.1", "*"):
            findings.append(
                warn(
                    f"portproxy {where} and WSL's relay both want port {overlap[0]}",
                    detail="whichever binds first wins; the other forwards nothing",
                    fix=Fix(
                        "keep one: delete the portproxy rule (as Administrator)",
                        [delete],
                        "windows-admin",
                    ),
                    evidence={"rule": rule.__dict__, "ports": overlap},
                )
            )
            continue
        findings.append(info(f"portproxy {where}", evidence={"rule": rule.__dict__}))
    return findings


def _netsh_portproxy(verb: str, rule: PortProxy, connect: str | None = None) -> str:
    line = (
        f"netsh interface portproxy {verb} {rule.kind} listenport={rule.listen_port} "
        f"listenaddress={rule.listen_address}"
    )
    return (
        line
        if connect is None
        else f"{line} connectport={rule.connect_low} connectaddress={connect}"
    )


def readd_portproxy(rule: PortProxy, vm_address: str) -> Action | None:
    """The stale rule deleted and added again for the VM's address now; the undo puts
    the old one back. A range has no netsh add form: advice only."""
    if rule.listen_low != rule.listen_high or rule.connect_low != rule.connect_high:
        return None
    where = f"{rule.listen_address}:{rule.listen_port}"
    return Action(
        "windows-admin",
        f"delete portproxy {where}, add it for {vm_address}",
        (_netsh_portproxy("delete", rule), _netsh_portproxy("add", rule, vm_address)),
        (_netsh_portproxy("delete", rule), _netsh_portproxy("add", rule, rule.connect_address)),
        f"restore it for {rule.connect_address}",
        ("windows.portproxy",),
    )


def start_ip_helper(start: str) -> Action:
    """IP Helper started (and set to start by itself, if it was Disabled); undo stops it."""
    enable = ("Set-Service iphlpsvc -StartupType Automatic",) if start == "Disabled" else ()
    disable = ("Set-Service iphlpsvc -StartupType Disabled",) if enable else ()
    return Action(
        "windows-admin",
        "start the IP Helper service (iphlpsvc)" + (", start type Automatic" if enable else ""),
        (*enable, "Start-Service iphlpsvc"),
        ("Stop-Service iphlpsvc", *disable),
        "stop it" + (", start type Disabled" if disable else ""),
        ("windows.portproxy",),
    )


# Windows programs that hold ports for a reason of their own: what that means.
_KNOWN_OWNERS = {
    "svchost.exe": "the IP Helper service (netsh portproxy) holds it",
}
_WHY_TAKEN = {
    "com.docker.backend.exe": "Docker Desktop publishes a container on it",
}


def port_owners(relay_ports: list[int], facts: WindowsFacts) -> list[Finding]:
    """For each WSL port the relay should forward: who listens on it on Windows."""
    for key in ("netstat", "tasklist"):
        bad = unreadable("who listens on which port", facts.outputs[key])
        if bad is not None:
            return [bad]
    findings = []
    for port in relay_ports:
        owners = facts.owners(port)
        if not owners:
            findings.append(
                warn(
                    f"Nothing on Windows listens on port {port}: WSL's relay ({RELAY}) "
                    "does not forward it",
                    detail="the relay is often dead after sleep or Fast Startup",
                    fix=Fix("restart WSL from Windows", ["wsl --shutdown"], "windows"),
                )
            )
            continue
        others = [(pid, name) for pid, name, _ in owners if name.lower() != RELAY]
        relay = [pid for pid, name, _ in owners if name.lower() == RELAY]
        if not others:
            findings.append(ok(f"Port {port} on Windows: WSL's relay ({RELAY}, pid {relay[0]})"))
            continue
        pid, name = others[0]
        known = _KNOWN_OWNERS.get(name.lower())
        if known is not None:
            findings.append(info(f"Port {port} on Windows: {known} (pid {pid})"))
        else:
            findings.append(taken(port, pid, name, relay[0] if relay else None))
    return findings


def taken(port: int, pid: int, name: str, relay: int | None) -> Finding:
    """Another Windows program holds a WSL listener's port: Windows localhost:PORT
    reaches it, not WSL (Docker Desktop's backend publishing a container, most often)."""
    why = _WHY_TAKEN.get(name.lower(), f"{name} listens there")
    also = f"; WSL's relay ({RELAY}, pid {relay}) listens too" if relay else ""
    return fail(
        f"Port {port} is taken on Windows by {name}, pid {pid}: Windows localhost:{port} "
        "reaches it, not WSL",
        detail=f"{why}{also}; WSL's relay cannot forward a port Windows already uses",
        fix=Fix(
            f"stop {name} or move it to another port (for Docker: publish the container on "
            "another port); or move the WSL service",
            [f"taskkill /PID {pid}"],
            "windows",
        ),
        evidence={"pid": pid, "program": name, "relay_pid": relay},
    )


def windows_reach(
    relay_ports: list[int], facts: WindowsFacts, ps: PowerShellFacts
) -> list[Finding]:
    """The end-to-end proof: Windows' localhost:PORT reaches the WSL listener. Who
    answered is read from the listener table (netstat), not from the connect."""
    bad = unreadable("a connection test", ps.output)
    if bad is not None:
        return [bad]
    findings = []
    for port in relay_ports:
        proof = ps.reach.get(port)
        owners = facts.owners(port)
        holder = owners[0] if owners else None
        other = next((o for o in owners if o[1].lower() != RELAY), None)
        if proof is None or proof.state == "pending":
            who = f"; netstat shows {holder[1]} (pid {holder[0]}) listening" if holder else ""
            findings.append(
                info(
                    f"Windows localhost:{port}: not proved (the connection test had not "
                    f"finished after {CONNECT_WAIT_MS} ms){who}",
                    detail="a refused loopback connect takes about 2 s on Windows; see "
                    "windows.port-owner for who holds the port",
                )
            )
        elif proof.state == "reached" and other is not None:
            findings.append(taken(port, other[0], other[1], None))
        elif proof.state == "reached":
            findings.append(ok(f"Windows localhost:{port} reaches the WSL listener"))
        else:
            findings.append(
                fail(
                    f"Windows localhost:{port} does not reach the WSL listener"
                    + (f": {proof.error}" if proof.error else ""),
                    detail="see windows.port-owner and windows.excluded-ports for the cause",
                    fix=Fix(
                        "restart WSL if nothing else explains it", ["wsl --shutdown"], "windows"
                    ),
                )
            )
    return findings


def ip_helper(facts: WindowsFacts, ps: PowerShellFacts) -> list[Finding]:
    """portproxy rules are served by the IP Helper service: stopped, they do nothing."""
    svc = ps.iphlpsvc
    if not facts.portproxy or svc is None or svc.running:
        return []
    enable = ["sc.exe config iphlpsvc start= auto"] if svc.start == "Disabled" else []
    return [
        fail(
            f"The IP Helper service (iphlpsvc) is {svc.status.lower()} "
            f"(start: {svc.start}): the {len(facts.portproxy)} portproxy rules do nothing",
            detail="netsh still lists the rules, but nothing listens on their ports",
            fix=Fix(
                "start the service (as Administrator)",
                [*enable, "net start iphlpsvc"],
                "windows-admin",
                start_ip_helper(svc.start),
            ),
            evidence={"status": svc.status, "start": svc.start},
        )
    ]


def wsl_status(wsl: WslFacts, conf: WslConfig | None, boot: bool) -> list[Finding]:
    """Versions, distributions (stopped ones stay stopped) and the networking mode."""
    findings: list[Finding] = []
    bad = unreadable("WSL's distributions", wsl.outputs["list"])
    if bad is not None:
        return [bad]
    v = wsl.version
    if v.wsl is None:
        findings.append(
            warn(
                "wsl.exe --version is not understood: this is the WSL built into Windows",
                detail="mirrored networking, DNS tunnelling and the Hyper-V firewall need "
                "the WSL from the Store",
                fix=Fix("update WSL", ["wsl --update"], "windows"),
            )
        )
    else:
        findings.append(
            info(
                f"WSL {v.wsl}, kernel {v.kernel or '?'}, Windows {v.windows or '?'}",
                evidence={"lines": list(v.lines)},
            )
        )
    for d in wsl.distros:
        mark = " (default)" if d.default else ""
        state = d.state
        if d.default and not d.running and not boot:
            state += ": not started by this check (--boot would start it)"
        why = "; WSL1 shares Windows' network stack" if d.version == 1 else ""
        findings.append(info(f"{d.name}{mark}: WSL{d.version}, {state}{why}"))
    if not wsl.distros:
        findings.append(
            warn(
                "No WSL distribution is installed",
                fix=Fix("install one", ["wsl --install"], "windows-admin"),
            )
        )
    wanted = None
    if conf is not None:
        wanted = conf.get("wsl2.networkingMode") or conf.get("experimental.networkingMode")
    if wsl.mode is not None and wanted and wanted.lower() != wsl.mode:
        findings.append(mode_mismatch(wanted, wsl.mode))
    elif wsl.mode is not None:
        findings.append(
            ok(
                f"Networking mode {wsl.mode} (wslinfo in "
                f"{wsl.default.name if wsl.default else 'WSL'})"
            )
        )
    return findings


def docker(code: int, out: str, toolbox: bool) -> list[Finding]:
    """Which Docker serves `docker` here, and where its published ports land."""
    findings = []
    os_type, _, name = out.strip().partition("|")
    if code != 0:
        findings.append(info("Docker is installed but its engine does not answer (not started?)"))
    elif os_type == "windows":
        findings.append(
            info(
                "Docker runs Windows containers: WSL forwarding does not apply to them",
                detail="switch Docker Desktop to Linux containers to use the WSL 2 backend",
            )
        )
    else:
        findings.append(
            info(
                f"Docker ({name or 'Linux containers'}) publishes ports on Windows localhost",
                detail="published ports belong to com.docker.backend.exe on Windows; they "
                "do not go through WSL's relay",
            )
        )
    if toolbox:
        findings.append(
            info(
                "Docker Toolbox (docker-machine) publishes ports on its VM's own address, "
                "never on localhost",
                fix=Fix("ask for that address", ["docker-machine ip"], "windows"),
            )
        )
    return findings
