"""The port forwarder: rules, relays, the server and its shutdown."""
