"""The only place that reads the live system: files, commands, interfaces, processes.

Every function here is cheap, bounded in time, and returns None (or empty) where the
fact cannot be had, so callers decide what a missing fact means.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from wslnet.facts.route import Route

USER_FILE_LIMIT = 4 << 20  # a file a person wrote: more than this is a mistake or an attack
PROC = Path("/proc")


def read_text(path: str | Path, limit: int = USER_FILE_LIMIT) -> str | None:
    """A text file, decoded leniently (bad bytes become U+FFFD); None if unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit)
    except OSError:
        return None
    return data.decode("utf-8", errors="replace")


def read_proc(name: str) -> str | None:
    """A /proc file (e.g. "net/tcp"), read whole: the kernel generates it, and a busy
    host's /proc/net/tcp passes 4 MiB, where a cut would leave half a line that reads
    as a broken one."""
    try:
        data = (PROC / name).read_bytes()
    except OSError:
        return None
    return data.decode("utf-8", errors="replace")


def read_proc_while(name: str, keep: Callable[[bytes], bool]) -> str | None:
    """A /proc file's header and then its lines while `keep` holds for each: the kernel
    generates the file as it is read, so what is not read is never made (a busy host's
    /proc/net/tcp runs to MiBs of TIME_WAIT lines after the few that listen)."""
    lines: list[bytes] = []
    try:
        with open(PROC / name, "rb") as f:
            lines.append(f.readline())
            for line in f:
                if not keep(line):
                    break
                lines.append(line)
    except OSError:
        return None
    return b"".join(lines).decode("utf-8", errors="replace")


def routes() -> list[Route]:
    """This namespace's IPv4 routes (/proc/net/route)."""
    from wslnet.facts import route

    found, _ = route.parse_proc_route(read_proc("net/route") or "")
    return found


def exists(path: str) -> bool:
    return os.path.exists(path)


def link_target(path: str) -> str | None:
    """Where a symbolic link points (as written), or None if `path` is not a link."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def list_dir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def env(name: str) -> str | None:
    return os.environ.get(name)


def no_window() -> int:
    """creationflags for a child: CREATE_NO_WINDOW on Windows (else under pythonw each
    console program flashes a window, and a long-lived one keeps it open); 0 elsewhere."""
    flag: int = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    return flag


def execute(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Runs a command: (exit code, stdout, stderr), decoded as wsl.exe needs.

    127: not found; 124: no answer in time; 126: could not be started."""
    exe = which(argv[0])
    if exe is None:
        return 127, "", f"{argv[0]} not found"
    try:
        res = subprocess.run(
            [exe, *argv[1:]],
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "WSL_UTF8": "1"},
            creationflags=no_window(),
        )
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]} gave no answer in {timeout:g} s"
    except OSError as exc:
        return 126, "", f"cannot run {argv[0]}: {exc.strerror or exc}"
    return res.returncode, decode_wsl_output(res.stdout), decode_wsl_output(res.stderr)


def run(argv: list[str], timeout: float = 2.0) -> str | None:
    """A command's standard output, or None if it is missing, fails or times out."""
    code, out, _ = execute(argv, timeout)
    return out if code == 0 else None


def decode_wsl_output(data: bytes) -> str:
    """wsl.exe's own messages are UTF-16LE (unless WSL_UTF8=1); a Linux command's are
    bytes, UTF-8 as a rule; Windows console tools (netsh, netstat) print in the console's
    OEM code page, for which cp850 stands in (digits and ASCII read the same in all)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(data) > 1 and data[1:2] == b"\x00"):
        return data.decode("utf-16-le", errors="replace").lstrip("\ufeff")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp850", errors="replace")


def wsl_exe(args: list[str], timeout: float = 10.0) -> tuple[int, str, str]:
    """Runs wsl.exe (or `wsl` inside WSL with interop)."""
    name = "wsl.exe" if which("wsl.exe") or not which("wsl") else "wsl"
    code, out, err = execute([name, *args], timeout)
    if code == 127:
        err = "wsl.exe not found (it exists on Windows, and inside WSL with interop)"
    elif code == 124:
        err += " (is the VM starting?)"
    return code, out, err


def kernel_release() -> str:
    if sys.platform == "win32":
        return ""
    return (read_text("/proc/sys/kernel/osrelease") or os.uname().release).strip()


def interfaces() -> dict[str, list[str]]:
    """Interface name -> IPv4 addresses (netifaces; /sys as a fallback for the names)."""
    try:
        import netifaces
    except ImportError:
        names = os.listdir("/sys/class/net") if os.path.isdir("/sys/class/net") else []
        return {name: [] for name in names}
    out: dict[str, list[str]] = {}
    for name in netifaces.interfaces():
        addrs = netifaces.ifaddresses(name).get(netifaces.AF_INET, [])
        out[str(name)] = [str(a["addr"]) for a in addrs if "addr" in a]
    return out


def interface_mtu(name: str) -> int | None:
    text = read_text(f"/sys/class/net/{name}/mtu")
    try:
        return int(text) if text else None
    except ValueError:
        return None


def socket_owners() -> dict[int, tuple[int, str]]:
    """Socket inode -> (pid, process name), for the processes we may look into."""
    owners: dict[int, tuple[int, str]] = {}
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return owners
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        name = None
        for fd in fds:
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                if name is None:
                    name = (read_text(f"/proc/{pid}/comm") or "?").strip()
                owners.setdefault(int(link[8:-1]), (int(pid), name))
    return owners


def processes_visible() -> bool:
    """Whether every process's file descriptors can be read here (so a socket with no
    owner among them has none in this PID namespace)."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:
            continue  # exited meanwhile
        except OSError:
            return False
    return True


def is_root_or_raw_capable() -> bool:
    """Root, or CAP_NET_RAW in the effective set: raw probes are possible."""
    if sys.platform == "win32":
        return False
    status = read_text("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            try:
                return bool(int(line.split()[1], 16) & (1 << 13))  # CAP_NET_RAW
            except (IndexError, ValueError):
                return False
    return False


def windows_userprofile() -> str | None:
    """%UserProfile% as a Linux path, through wslvar or cmd.exe, then wslpath (never
    when interop is off: cmd.exe would fail or hang)."""
    if interop_off() is not None:
        return None
    win = run(["wslvar", "USERPROFILE"], timeout=3)
    if not win:
        win = run(["cmd.exe", "/c", "echo %USERPROFILE%"], timeout=3)
    if not win or "%" in win:
        return None
    linux = run(["wslpath", "-u", win.strip()], timeout=2)
    return linux.strip() if linux else None


def resolve_ipv4(name: str, timeout: float = 1.0) -> str | None:
    """The first IPv4 address of a name, or None; never waits longer than `timeout`
    (getaddrinfo has no timeout of its own, so it runs in a daemon thread)."""
    import socket
    import threading

    found: list[str] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return
        found.extend(str(info[4][0]) for info in infos)

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    return found[0] if found else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (without signalling it)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        # os.kill(pid, 0) would terminate the process on Windows: ask for a handle.
        synchronize = 0x00100000
        handle = ctypes.windll.kernel32.OpenProcess(synchronize, False, pid)
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's, but alive
    return True


def windows_exe(name: str, args: list[str], timeout: float = 3.0) -> tuple[int, str, str]:
    """Runs a Windows program: natively on Windows, through interop inside WSL (where
    /mnt/c/Windows/System32 is on PATH). 127: not found; 126: interop is off."""
    return execute([name, *args], timeout)


INTEROP_MARKER = "/proc/sys/fs/binfmt_misc/WSLInterop"


def interop_off() -> str | None:
    """Why WSL's interop is switched off (read first, so no Windows tool is launched:
    each would fail or hang ~10 s), or None."""
    from wslnet.facts.wslconfig import parse

    marker = read_text(INTEROP_MARKER, limit=4096)
    if marker is not None and marker.split("\n", 1)[0].strip() == "disabled":
        return f"interop is off ({INTEROP_MARKER} reads 'disabled')"
    conf = read_text("/etc/wsl.conf")
    if conf is not None and parse(conf, "wslconf").flag("interop.enabled") is False:
        return "interop is off ([interop] enabled=false in /etc/wsl.conf)"
    return None


def interop_status(in_wsl: bool) -> str | None:
    """None when Windows programs can run from here, else why not."""
    if sys.platform == "win32":
        return None
    if not in_wsl:
        return "not in WSL: there is no Windows here to ask"
    off = interop_off()
    if off is not None:
        return off
    if which("netsh.exe") is None and which("powershell.exe") is None:
        return (
            "Windows programs are not on PATH (interop off with [interop] enabled=false, or "
            "appendWindowsPath=false in /etc/wsl.conf)"
        )
    return None


def which(name: str) -> str | None:
    """A program's path on PATH. shutil is imported here, not at the top: it brings bz2
    and lzma, half a MiB of a long-running forwarder's memory, for this one function."""
    import shutil

    return shutil.which(name)
