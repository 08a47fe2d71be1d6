"""Forward 127.0.0.1:PORT inside network namespaces to 127.0.0.1:PORT on the host.

    python3 netns-forward.py PORT NETNS...

One process, started in the host's namespace: it enters each named namespace
(/var/run/netns/NAME) only to open a listening socket there, comes back, and makes every
outgoing connection from the host's namespace (a socket keeps the namespace it was made
in). scripts/swarm.sh uses it so that the swarm's daemons reach the host's registry at
the address the engines trust by default. Prints "ready" once it listens everywhere.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import sys

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


def listener_in(netns: str, port: int) -> socket.socket:
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
    try:
        setns(target)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        sock.setblocking(False)
        return sock
    finally:
        setns(home)
        os.close(target)
        os.close(home)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def main(port: int, namespaces: list[str]) -> None:
    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    servers = [
        await asyncio.start_server(forward, sock=listener_in(ns, port)) for ns in namespaces
    ]
    print("ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2:]))
