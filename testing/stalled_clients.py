#!/usr/bin/env python3
"""Clients that send requests and never read a reply, with tiny receive
windows, so that their replies back up in the server rather than in the
kernel: `stalled_clients.py PORT COUNT REQUESTS_FILE`. Prints "ready N" once
each of the COUNT connections has sent all it could, then holds them until
its stdin closes. A test's stand-in for proxies that stopped reading.
"""
import select
import socket
import sys


def main() -> None:
    port, count, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with open(path, "rb") as f:
        request = f.read()
    conns = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A receive window of a few KiB: the server's writes stall at once.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        conns.append([s, 0])
    # Send until every connection has sent all, or could send nothing more for a while.
    idle_rounds = 0
    while idle_rounds < 20 and any(sent < len(request) for _, sent in conns):
        progress = False
        for entry in conns:
            s, sent = entry
            if sent >= len(request):
                continue
            try:
                n = s.send(request[sent:])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                entry[1] = len(request)
                continue
            entry[1] += n
            progress = progress or n > 0
        idle_rounds = 0 if progress else idle_rounds + 1
        select.select([], [], [], 0.05)
    print(f"ready {len(conns)}", flush=True)
    sys.stdin.read()
    for s, _ in conns:
        s.close()


if __name__ == "__main__":
    main()
