"""The port forwarder, in three layers that only look down:

    core/     typed config, rules, resolution, admission, the rule table, connections,
              UDP sessions, the server: what is decided
    data/     the data path: relays (splice, protocols), epoll, dialling, UDP ports and
              socket options, end reasons: moves bytes, knows no rule, policy or log
    control/  the control plane: config file, HTTP API, status, auto-forward
    run.py    wires the three together for one run (event loop, signals)

The control plane imports the core and the data path; they never import it, and the
data path never imports the core.
"""
