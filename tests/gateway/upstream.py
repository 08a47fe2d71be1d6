"""A tiny HTTP/1.1 instance for the gateway tests, on raw asyncio streams.

    python tests/gateway/upstream.py PORT NAME

Paths (any method, query strings kept):
  /sleep?s=S          answer after S seconds
  /big?n=N            a Content-Length body of N bytes
  /chunked?n=N&parts=P  a chunked body of N bytes in P chunks
  /unbounded?n=N&parts=P  a body of N bytes in P writes, delimited by closing the connection
  /drop               close the connection without answering
  /cgi                a CGI-style answer: header lines ending in bare LF, body until close
  /header?name=N&value=V  an answer with the header N: V
  /count              how many requests this instance has seen (not counting /count)
  /outputs            a V2 answer: outputs y = [1.0, 2.0], or [1.0, 2.5] if NAME starts
                      with "other"; ``?chunks=P``: chunked, in P chunks
  anything else       JSON: instance name, method, target, headers, body size

An instance whose NAME starts with "fails" answers every request but /count with 500;
one whose NAME starts with "hangs" never answers them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import parse_qs, urlsplit

NAME = "upstream"
SEEN = 0


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


def respond(
    status: int, body: bytes, content_type: str = "application/json", extra: str = ""
) -> bytes:
    head = (
        f"HTTP/1.1 {status} OK\r\ncontent-type: {content_type}\r\n{extra}"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global SEEN
    try:
        while True:
            method, target, headers, body = await read_request(reader)
            url = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path != "/count":
                SEEN += 1
            if url.path == "/count":
                writer.write(respond(200, json.dumps({"count": SEEN}).encode()))
            elif NAME.startswith("fails"):
                writer.write(respond(500, b'{"error": "failing on purpose"}'))
            elif NAME.startswith("hangs"):
                await asyncio.sleep(3600)
            elif url.path == "/outputs":
                second = 2.5 if NAME.startswith("other") else 2.0
                output = {"name": "y", "datatype": "FP32", "shape": [2], "data": [1.0, second]}
                answer = json.dumps({"outputs": [output]}).encode()
                if "chunks" in query:
                    await write_chunks(writer, answer, int(query["chunks"]))
                else:
                    writer.write(respond(200, answer))
            elif url.path == "/sleep":
                await asyncio.sleep(float(query.get("s", "1")))
                writer.write(respond(200, b'{"slept": true}'))
            elif url.path == "/big":
                writer.write(respond(200, b"x" * int(query["n"]), "text/plain"))
            elif url.path == "/chunked":
                await write_chunked(writer, int(query["n"]), int(query.get("parts", "4")))
            elif url.path == "/header":
                extra = f"{query['name']}: {query['value']}\r\n"
                writer.write(respond(200, b"{}", extra=extra))
            elif url.path == "/unbounded":
                await write_unbounded(writer, int(query["n"]), int(query.get("parts", "4")))
                return
            elif url.path == "/drop":
                writer.close()
                return
            elif url.path == "/cgi":  # as busybox httpd's CGI: bare LFs, body until close
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\n\ncgi says hi\n")
                await writer.drain()
                writer.close()
                return
            else:
                echo = {
                    "instance": NAME,
                    "method": method,
                    "target": target,
                    "headers": headers,
                    "body_bytes": len(body),
                    "peer_port": writer.get_extra_info("peername")[1],
                }
                writer.write(respond(200, json.dumps(echo).encode()))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def write_chunked(writer: asyncio.StreamWriter, size: int, parts: int) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    step = max(1, size // parts)
    sent = 0
    while sent < size:
        n = min(step, size - sent)
        writer.write(b"%x\r\n%s\r\n" % (n, b"y" * n))
        sent += n
        await writer.drain()
        await asyncio.sleep(0.01)
    writer.write(b"0\r\n\r\n")


async def write_chunks(writer: asyncio.StreamWriter, body: bytes, parts: int) -> None:
    """``body`` chunked in ``parts`` writes."""
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    step = max(1, -(-len(body) // parts))
    for at in range(0, len(body), step):
        writer.write(b"%x\r\n%s\r\n" % (len(body[at : at + step]), body[at : at + step]))
        await writer.drain()
        await asyncio.sleep(0.005)
    writer.write(b"0\r\n\r\n")


async def write_unbounded(writer: asyncio.StreamWriter, size: int, parts: int) -> None:
    """A body without Content-Length or chunks: it ends when the connection closes."""
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n"
    step = max(1, size // parts)
    if parts == 1:  # head and body in one write
        writer.write(head + b"z" * size)
    else:
        writer.write(head)
        for sent in range(0, size, step):
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(b"z" * min(step, size - sent))
    await writer.drain()
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=2**20)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    NAME = sys.argv[2]
    asyncio.run(main(int(sys.argv[1])))
