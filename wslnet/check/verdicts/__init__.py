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
    windows.firewall                  firewall.py (and the firewall fixes others share)
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
from wslnet.check.verdicts.env import environment
from wslnet.check.verdicts.firewall import (
    FIREWALL_RULE,
    HYPERV_ALLOW,
    firewall_fix,
    hyperv_firewall,
    windows_firewall,
)
from wslnet.check.verdicts.host import host_address, windows_port
from wslnet.check.verdicts.listen import forward_command, judge, judge_all, listeners, wsl_own
from wslnet.check.verdicts.network import mirrored
from wslnet.check.verdicts.proxies import proxy
from wslnet.check.verdicts.raw import host_layer2, path_mtu
from wslnet.check.verdicts.windows import (
    docker,
    excluded_ports,
    port_owners,
    portproxy,
    unreadable,
    windows_reach,
    wsl_status,
)

__all__ = [
    "FIREWALL_RULE", "HYPERV_ALLOW", "SLOW_DNS", "config_mode", "docker", "environment",
    "excluded_ports", "firewall_fix", "forward_command", "host_address", "host_layer2",
    "hyperv_firewall", "judge", "judge_all", "line_problems", "listeners", "mirrored",
    "mode_mismatch", "path_mtu", "port_owners", "portproxy", "proxy", "resolv_conf",
    "resolver_answer", "unreadable", "windows_firewall", "windows_port", "windows_reach",
    "wsl_own", "wsl_status", "wslconf_file", "wslconfig_file",
]  # fmt: skip
