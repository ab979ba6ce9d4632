"""`wslnet check`: declared checks that return typed findings, and their renderers."""
