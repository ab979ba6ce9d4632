"""The doctor's pure core: facts in, findings out. No I/O, no clock, no printing.

The check functions in checks.py, raw_checks.py and windows_checks.py gather the facts
and call these; the tests call these directly with recorded or constructed facts. One
module per family of check ids:

    environment.kind                  env.py
    config.*                          config.py
    listeners.*, wsl.listeners        listen.py
    host.*, raw.syn                   host.py
    dns.*                             dns.py
    proxy.*                           proxies.py
    raw.host, raw.mtu                 raw.py
    network.mirrored                  network.py
    wsl.other-distros                 ownership.py
    network.ignored-ports             network.py
    windows.firewall                  firewall.py (and the firewall fixes others share)
    windows.vpn                       vpn.py
    windows.proxy                     proxies.py
    windows.* (the others)            windows.py
"""

from __future__ import annotations

from wslnet.check.verdicts.config import (
    config_mode,
    line_problems,
    mode_mismatch,
    wslconf_file,
    wslconfig_file,
)
from wslnet.check.verdicts.dns import SLOW_DNS, resolv_conf, resolver_answer
from wslnet.check.verdicts.env import environment, networking_off
from wslnet.check.verdicts.firewall import (
    FIREWALL_RULE,
    HYPERV_ALLOW,
    firewall_fix,
    hyperv_firewall,
    lan_rules,
    windows_firewall,
)
from wslnet.check.verdicts.host import host_address, windows_port
from wslnet.check.verdicts.listen import forward_command, judge, judge_all, listeners, wsl_own
from wslnet.check.verdicts.network import ignored_ports, mirrored
from wslnet.check.verdicts.ownership import unowned
from wslnet.check.verdicts.proxies import proxy, proxy_on_windows_loopback
from wslnet.check.verdicts.raw import host_layer2, path_mtu
from wslnet.check.verdicts.vpn import vpn
from wslnet.check.verdicts.windows import (
    docker,
    excluded_ports,
    ip_helper,
    port_owners,
    portproxy,
    unreadable,
    windows_reach,
    wsl_status,
)

__all__ = [
    "FIREWALL_RULE",
    "HYPERV_ALLOW",
    "SLOW_DNS",
    "config_mode",
    "docker",
    "environment",
    "excluded_ports",
    "firewall_fix",
    "forward_command",
    "host_address",
    "host_layer2",
    "hyperv_firewall",
    "ignored_ports",
    "ip_helper",
    "judge",
    "judge_all",
    "lan_rules",
    "line_problems",
    "listeners",
    "mirrored",
    "mode_mismatch",
    "networking_off",
    "path_mtu",
    "port_owners",
    "portproxy",
    "proxy",
    "proxy_on_windows_loopback",
    "resolv_conf",
    "resolver_answer",
    "unowned",
    "unreadable",
    "vpn",
    "windows_firewall",
    "windows_port",
    "windows_reach",
    "wsl_own",
    "wsl_status",
    "wslconf_file",
    "wslconfig_file",
]
