"""Shows the half-close that many forwarders break: `printf hi | nc -N host port`.

Starts a server on loopback that answers only after it sees end-of-file, runs
`wslnet forward` in front of it, and sends a request through it with the write side
shut. Run: python examples/half_close_demo.py
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time


def serve(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    conn.sendall(b"server saw EOF after %d bytes" % len(data))
    conn.close()


def main() -> int:
    listener = socket.create_server(("127.0.0.1", 0))
    target = listener.getsockname()[1]
    threading.Thread(target=serve, args=(listener,), daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fwd = subprocess.Popen(
        [sys.executable, "-m", "wslnet", "forward", f"{port}=127.0.0.1:{target}"],
    )
    try:
        for _ in range(50):
            try:
                client = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        else:
            print("the forwarder did not start", file=sys.stderr)
            return 1
        client.sendall(b"hi")
        client.shutdown(socket.SHUT_WR)  # what `nc -N` does after stdin ends
        reply = b""
        while chunk := client.recv(4096):
            reply += chunk
        print("reply:", reply.decode())
        return 0
    finally:
        fwd.terminate()
        fwd.wait()


if __name__ == "__main__":
    sys.exit(main())
