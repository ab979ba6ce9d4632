"""proxy.settings: proxy settings and whether their proxy answers."""

from __future__ import annotations

from wslnet.check.model import Finding, ok, warn
from wslnet.facts.proxy import Proxy
from wslnet.verdict import Fix


def proxy(p: Proxy, state: str, mode: str | None) -> Finding:
    """A proxy setting and whether its address answered a connect."""
    ev: dict[str, object] = {"source": p.source, "url": p.url, "state": state}
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
