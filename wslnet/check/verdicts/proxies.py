"""proxy.settings: proxy settings and whether their proxy answers."""

from __future__ import annotations

from wslnet.check.model import Finding, fail, ok, warn
from wslnet.facts.proxy import Proxy
from wslnet.verdict import Fix


def proxy(p: Proxy, state: str, mode: str | None) -> Finding:
    """A proxy setting and whether its address answered a connect."""
    ev: dict[str, object] = {"source": p.source, "url": p.url, "state": state}
    if p.masked:
        ev["masked"] = "the URL's user name and password"
    where = f"{p.host}:{p.port}"
    if state == "open":
        return ok(f"{p.source} proxy {where} answers", evidence=ev)
    if p.loopback and mode == "nat":
        return warn(
            f"{p.source} points at {where}: in NAT mode that is this VM, not Windows",
            detail="WSL says 'A localhost proxy configuration was detected but not mirrored "
            "into WSL': a proxy on Windows' localhost is not reachable as localhost here",
            fix=Fix(
                "use the Windows host's address (and let the proxy listen beyond 127.0.0.1 "
                "on Windows), or networkingMode=mirrored with autoProxy=true in .wslconfig",
                [f"export {p.source}=http://$(wslnet ip host):{p.port}"]
                if p.source.upper().endswith("_PROXY")
                else [],
            ),
            evidence=ev,
        )
    return warn(
        f"{p.source} proxy {where} does not answer ({state})",
        detail="programs that use this setting cannot reach the internet",
        fix=Fix(f"start the proxy, or correct or unset {p.source}"),
        evidence=ev,
    )


def proxy_on_windows_loopback(
    p: Proxy, host: str | None, bound: list[str], mode: str | None
) -> Finding | None:
    """A proxy setting that points at the Windows host, while the proxy there listens on
    127.0.0.1 / ::1 only (`bound`: its addresses in Windows' netstat): WSL in NAT mode
    cannot reach it (shared wsl-networking.md section 9). None when it does not apply."""
    if mode != "nat" or host is None or p.host != host or not bound:
        return None
    if not all(a.startswith("127.") or a == "::1" for a in bound):
        return None
    return fail(
        f"{p.source} points at the Windows host {host}:{p.port}, but the proxy there "
        "listens on 127.0.0.1 only",
        detail="a Windows proxy on loopback cannot be reached from WSL in NAT mode",
        fix=Fix(
            "let the proxy listen beyond loopback (its 'allow LAN connections' setting, or "
            "bind 0.0.0.0) and admit WSL in the Windows firewall; or networkingMode=mirrored "
            "with autoProxy=true in .wslconfig, then `wsl --shutdown`",
        ),
        evidence={"source": p.source, "url": p.url, "windows_addresses": bound},
    )
