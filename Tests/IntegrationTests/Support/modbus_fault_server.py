#!/usr/bin/env python3
"""A Modbus TCP server that answers wrongly on purpose, for the client's error paths.

    modbus_fault_server.py MODE [ARGUMENT]

Answers reads of holding registers with register i = address + i, one thread per connection, and
prints "PORT <n>" once it listens. MODE spoils the answers:
  late SECONDS  the first request it gets is answered SECONDS late, with 0xDEAD in every register
  stale         each answer is preceded by one with the transaction of the request before
  truncated     each answer stops after its header and function; the connection stays open
  short         each answer carries one register fewer, consistently framed
  dribble SECONDS  each answer is sent in three pieces, SECONDS apart: the header, the function
                and byte count, the registers
  close         the first request it gets is not answered: the connection is closed instead
  unit UNIT     each answer carries unit UNIT, whatever the request's
"""
import signal
import socket
import struct
import sys
import threading
import time

mode = sys.argv[1]
argument = sys.argv[2] if len(sys.argv) > 2 else "0"
delay = float(argument)
first = threading.Lock()


def frame(transaction, unit, function, registers):
    body = struct.pack(">BBB", unit, function, 2 * len(registers)) + struct.pack(">%dH" % len(registers), *registers)
    return struct.pack(">HHH", transaction, 0, len(body)) + body


def answer(conn, request):
    transaction, _, _, unit, function, address, count = struct.unpack(">HHHBBHH", request)
    values = [(address + i) & 0xFFFF for i in range(count)]
    if mode == "late" and first.acquire(blocking=False):
        time.sleep(delay)
        return frame(transaction, unit, function, [0xDEAD] * count)
    if mode == "stale":
        return frame((transaction - 1) & 0xFFFF, unit, function, values) + frame(transaction, unit, function, values)
    if mode == "truncated":
        return frame(transaction, unit, function, values)[:8]
    if mode == "short":
        return frame(transaction, unit, function, values[:-1])
    if mode == "unit":
        return frame(transaction, int(argument), function, values)
    return frame(transaction, unit, function, values)


def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending = b""
    with conn:
        while True:
            try:
                data = conn.recv(260)
            except OSError:
                return
            if not data:
                return
            pending += data
            while len(pending) >= 12:
                request, pending = pending[:12], pending[12:]
                if mode == "close" and first.acquire(blocking=False):
                    return
                reply = answer(conn, request)
                try:
                    if mode == "dribble":
                        for k, piece in enumerate((reply[:7], reply[7:9], reply[9:])):
                            if k:
                                time.sleep(delay)
                            conn.sendall(piece)
                    else:
                        conn.sendall(reply)
                except OSError:
                    return


signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(8)
print("PORT", listener.getsockname()[1], flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
