"""wsl.other-distros: listening sockets no process here owns. All WSL2 distributions
share one VM and one network namespace (shared wsl-networking.md section 9), so a
listener started in another distribution shows in this one's /proc/net/tcp with no
process here to own it: it is not the user's own to stop."""

from __future__ import annotations

from wslnet.check.model import Finding, info, ok
from wslnet.verdict import Fix, Listener


def unowned(found: list[Listener], all_visible: bool) -> list[Finding]:
    """One finding per port whose sockets no process here owns. `all_visible`: every
    process's file descriptors could be read (root), so no owner means none here."""
    ports: dict[tuple[str, int], list[Listener]] = {}
    for x in found:
        if x.windows_localhost != "n/a":  # WSL's own (DNS tunnel, resolved's stub)
            ports.setdefault((x.proto, x.port), []).append(x)
    findings = []
    for (proto, port), sockets in sorted(ports.items()):
        if any(x.pid is not None for x in sockets):
            continue
        where = ", ".join(f"{x.address}:{port}" for x in sockets)
        if all_visible:
            findings.append(
                info(
                    f"{proto} {where} belongs to a process outside this distribution "
                    "(all WSL2 distributions share one network namespace)",
                    detail="no process in this distribution owns it: another distribution "
                    "(or WSL itself) listens there, and a service here cannot bind the port",
                    fix=Fix(
                        "find it in the other distributions (from Windows), or use another "
                        "port here",
                        [
                            "wsl.exe -l --running",
                            f"wsl.exe -d <distribution> -e ss -ltnp sport = :{port}",
                        ],
                    ),
                    evidence={
                        "proto": proto,
                        "port": port,
                        "addresses": [x.address for x in sockets],
                    },
                )
            )
        else:
            findings.append(
                info(
                    f"{proto} {where}: its process is not visible to this user (another "
                    "user's, or outside this distribution)",
                    fix=Fix(
                        "run the check as root to tell them apart", ["sudo wslnet check listeners"]
                    ),
                )
            )
    return findings or [ok("Every listening socket belongs to a process in this distribution")]
