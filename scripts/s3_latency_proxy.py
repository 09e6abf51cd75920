#!/usr/bin/env python3
"""An HTTP/1.1 proxy in front of an S3-compatible store that makes loopback look like S3:
each request waits before it is forwarded (GET/HEAD ~60 ms, PUT/POST/DELETE ~100 ms by
default, turbopuffer's published S3 figures), and, for fault drills, some requests fail.

    scripts/s3_latency_proxy.py --listen 18400 --upstream 127.0.0.1:8333 [--get-ms 60] [--put-ms 100]
        [--jitter-ms 10] [--slowdown-every N] [--lose-answer-every N] [--reset-every N]
        [--blackhole-every N] [--burst-every S --burst-seconds D] [--faults-off] [--stats FILE] [--trace FILE]

--slowdown-every N answers every Nth write 503 SlowDown without forwarding it (a refused request);
--lose-answer-every N forwards every Nth write and then closes the connection without answering
(an applied request whose outcome the client never hears); --reset-every N sends every Nth GET
answer with a body only half, then resets the connection (a reset mid-body); --blackhole-every N
never answers every Nth request and never forwards it (the connection stays open until the client
gives up); --burst-every S --burst-seconds D answers every request 503 SlowDown for D seconds out
of every S (a burst of throttling). The faults are off from the start with --faults-off, and
SIGUSR2 turns them on and off (latency stays). Request signatures are untouched
(the Host header is kept), so the store still checks them. On SIGTERM/SIGINT it writes request
counts by kind (GET, HEAD, PUT, POST, DELETE, LIST) to --stats (JSON) if given, and on SIGUSR1
at any time. --trace appends one line per request as it is answered: seconds since the epoch
when it came and when it was answered, method, status, response bytes, path (a cold start read
as a timeline).
"""
import argparse, asyncio, json, os, random, signal, sys, time

args = None
trace = None
counts = {"requests": 0, "slowdowns": 0, "lost_answers": 0, "resets": 0, "blackholes": 0, "burst_503s": 0}
writes = 0
gets = 0
faults_on = True
started = time.monotonic()


def slow_down(writer):
    msg = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    writer.write(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: "
                 + str(len(msg)).encode() + b"\r\n\r\n" + msg)


def in_burst():
    return bool(args.burst_every) and (time.monotonic() - started) % args.burst_every < args.burst_seconds


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return head, lines[0], headers


async def read_body(reader, headers, no_body=False):
    """The body bytes as they came (fixed length or chunked, passed through whole)."""
    if no_body:
        return b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            out += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            out += await reader.readexactly(size + 2)
            if size == 0:
                return bytes(out)
    n = int(headers.get("content-length", "0"))
    return await reader.readexactly(n) if n else b""


async def handle(client_reader, client_writer):
    global writes, gets
    up_host, up_port = args.upstream.rsplit(":", 1)
    try:
        up_reader, up_writer = await asyncio.open_connection(up_host, int(up_port))
    except OSError:
        client_writer.close()
        return
    try:
        while True:
            try:
                head, request_line, headers = await read_head(client_reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if headers.get("expect", "").lower() == "100-continue":
                # Answer the interim response ourselves and drop the header upstream (it is never
                # signed), so the body comes before the request is forwarded.
                client_writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await client_writer.drain()
                head = b"\r\n".join(l for l in head.split(b"\r\n") if not l.lower().startswith(b"expect:"))
            body = await read_body(client_reader, headers)
            came = time.time()
            method = request_line.split(" ", 1)[0]
            kind = "LIST" if method == "GET" and "list-type=2" in request_line else method
            counts["requests"] += 1
            counts[kind] = counts.get(kind, 0) + 1
            is_write = method in ("PUT", "POST", "DELETE")
            delay = (args.put_ms if is_write else args.get_ms) + random.uniform(-args.jitter_ms, args.jitter_ms)
            await asyncio.sleep(max(0.0, delay) / 1000)
            if faults_on and in_burst():
                counts["burst_503s"] += 1
                slow_down(client_writer)
                await client_writer.drain()
                continue
            if faults_on and args.blackhole_every and counts["requests"] % args.blackhole_every == 0:
                counts["blackholes"] += 1
                while await client_reader.read(1 << 16):
                    pass  # until the client gives up and closes
                return
            if is_write:
                writes += 1
                if faults_on and args.slowdown_every and writes % args.slowdown_every == 0:
                    counts["slowdowns"] += 1
                    slow_down(client_writer)
                    await client_writer.drain()
                    continue
            up_writer.write(head + body)
            await up_writer.drain()
            rhead, status_line, rheaders = await read_head(up_reader)
            status = int(status_line.split(" ")[1])
            rbody = await read_body(up_reader, rheaders, no_body=(method == "HEAD" or status in (204, 304)))
            if faults_on and is_write and args.lose_answer_every and writes % args.lose_answer_every == 0:
                counts["lost_answers"] += 1
                return  # applied upstream; the client hears nothing
            if method == "GET" and len(rbody) > 1:
                gets += 1
                if faults_on and args.reset_every and gets % args.reset_every == 0:
                    counts["resets"] += 1
                    client_writer.write(rhead + rbody[:len(rbody) // 2])
                    await client_writer.drain()
                    client_writer.transport.abort()  # RST: the answer is cut off mid-body
                    return
            client_writer.write(rhead + rbody)
            await client_writer.drain()
            if trace:
                trace.write(f"{came:.3f} {time.time():.3f} {kind} {status} {len(rbody)} "
                            f"{headers.get('range', '-')} {request_line.split(' ')[1]}\n")
                trace.flush()
    except (asyncio.IncompleteReadError, ConnectionError):
        return
    finally:
        client_writer.close()
        up_writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", args.listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, write_stats)
    loop.add_signal_handler(signal.SIGUSR2, toggle_faults)
    print(f"listening on 127.0.0.1:{args.listen} -> {args.upstream}", flush=True)
    async with server:
        await stop.wait()
    write_stats()


def toggle_faults():
    global faults_on
    faults_on = not faults_on
    counts["faults_on"] = faults_on


def write_stats():
    if args.stats:
        with open(args.stats + ".tmp", "w") as f:
            json.dump(counts, f, indent=1)
        os.replace(args.stats + ".tmp", args.stats)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--get-ms", type=float, default=60)
    p.add_argument("--put-ms", type=float, default=100)
    p.add_argument("--jitter-ms", type=float, default=10)
    p.add_argument("--slowdown-every", type=int, default=0)
    p.add_argument("--lose-answer-every", type=int, default=0)
    p.add_argument("--reset-every", type=int, default=0)
    p.add_argument("--blackhole-every", type=int, default=0)
    p.add_argument("--burst-every", type=float, default=0)
    p.add_argument("--burst-seconds", type=float, default=0)
    p.add_argument("--faults-off", action="store_true")
    p.add_argument("--stats")
    p.add_argument("--trace")
    args = p.parse_args()
    faults_on = not args.faults_off
    if args.trace:
        trace = open(args.trace, "a")
    asyncio.run(main())
