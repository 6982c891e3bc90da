#!/usr/bin/env python3
"""A Modbus server that none of us wrote (pymodbus), serving typed values for the edge-agent tests.

    modbus_server.py SPEC.json (--tcp PORT | --serial DEVICE) [--delay SECONDS]
    modbus_server.py SPEC.json --dump     (prints each tag's encoded registers or bits as JSON)

SPEC.json: {"unit": 1, "tags": [{"area": "holding", "address": 100, "type": "float32",
            "order": "CDAB", "value": 3.5}, {"area": "coil", "address": 3, "value": true},
            {"area": "holding", "address": 200, "type": "string", "length": 4, "value": "AB-7"},
            {"area": "holding", "address": 300, "registers": [1, 2, 3]}]}
Values are encoded here with Python's struct, independently of the agent's decoder. Addresses
not listed answer with an illegal-address exception. --delay answers every request that late.
Prints "PORT <n>" (TCP) or "READY" (serial) once it serves, and "DELAYING" as it holds a request.
"""
import argparse
import asyncio
import json
import signal
import socket
import struct
import sys

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q", "uint64": ">Q",
           "float32": ">f", "float64": ">d"}


def registers(tag):
    """The registers of one typed value, in the tag's byte order."""
    if "registers" in tag:
        return list(tag["registers"])
    kind = tag.get("type", "uint16")
    if kind == "string":
        raw = tag["value"].encode("latin-1").ljust(tag["length"] * 2, b"\0")
    elif kind == "bool":
        return [int(tag["value"]) << tag.get("bit", 0)]
    else:
        raw = struct.pack(FORMATS[kind], tag["value"])
    words = [raw[i:i + 2] for i in range(0, len(raw), 2)]
    order = tag.get("order", "ABCD")
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def build(spec, delay):
    areas = {"coil": [], "discrete": [], "holding": [], "input": []}
    for tag in spec["tags"]:
        if tag["area"] in ("coil", "discrete"):
            values = tag["value"] if isinstance(tag["value"], list) else [tag["value"]]
            areas[tag["area"]].append(SimData(tag["address"], values=[bool(v) for v in values], datatype=DataType.BITS))
        else:
            areas[tag["area"]].append(SimData(tag["address"], values=registers(tag), datatype=DataType.REGISTERS))

    for name, blocks in areas.items():
        blocks.sort(key=lambda b: b.address)
        if not blocks:  # pymodbus wants every area to hold something: one unused address at the top
            bits = name in ("coil", "discrete")
            blocks.append(SimData(65535, values=[False] if bits else [0], datatype=DataType.BITS if bits else DataType.REGISTERS))

    async def slow(*_):
        print("DELAYING", flush=True)
        await asyncio.sleep(delay)
        return None

    return SimDevice(spec.get("unit", 1), (areas["coil"], areas["discrete"], areas["holding"], areas["input"]),
                     action=slow if delay else None)


async def main():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("--tcp", type=int)
    parser.add_argument("--serial")
    parser.add_argument("--delay", type=float, default=0)
    parser.add_argument("--dump", action="store_true")
    args = parser.parse_args()
    if args.dump:
        with open(args.spec) as f:
            tags = json.load(f)["tags"]
        print(json.dumps([tag["value"] if tag["area"] in ("coil", "discrete") else registers(tag) for tag in tags]))
        return
    with open(args.spec) as f:
        device = build(json.load(f), args.delay)
    if args.serial:
        server = ModbusSerialServer(device, port=args.serial, baudrate=19200)
        await server.listen()
        print("READY", flush=True)
    else:
        port = args.tcp
        if port == 0:
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            probe.close()
        server = ModbusTcpServer(device, address=("127.0.0.1", port))
        await server.listen()
        print("PORT", port, flush=True)
    await server.serving


if __name__ == "__main__":
    asyncio.run(main())
