"""Reachability probes: connect-based here; raw (scapy) probes are imported only when run."""
