"""The forwarder's core: config, rules, resolution, rule table, connections, server."""
