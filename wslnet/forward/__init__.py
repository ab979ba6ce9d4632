"""The port forwarder, in three layers that only look down:

    core/     typed config, rules, resolution, the rule table, connections, the server
    data/     the data path: relays (splice, protocols), epoll, dialling, UDP
    control/  the control plane: config file, HTTP API, status, auto-forward
    run.py    wires the three together for one run (event loop, signals)

The control plane imports the core and the data path; they never import it.
"""
