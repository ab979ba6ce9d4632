"""The control plane: config file, HTTP API, status, auto-forward. Imports the core."""
