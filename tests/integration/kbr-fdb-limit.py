#!/usr/bin/env python3
"""The kernel bridge's learned-entry limit (Linux >= 6.7), over rtnetlink.

    kbr-fdb-limit.py set BRIDGE N    # IFLA_BR_FDB_MAX_LEARNED = N
    kbr-fdb-limit.py get BRIDGE      # prints "n_learned N max_learned M"

Debian 12's iproute2 (6.1) predates the fdb_max_learned keyword, so the
integration test that uses the kernel bridge as the peer of xbrd's
set-fdb-limit sets it here, with the standard library only.  Exits 1 with a
message when the kernel does not know the attributes.
"""
import os
import socket
import struct
import sys

RTM_NEWLINK, RTM_GETLINK = 16, 18
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
IFLA_LINKINFO = 18
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
# include/uapi/linux/if_link.h: the IFLA_BR_* enum, after IFLA_BR_MCAST_QUERIER_STATE (47)
IFLA_BR_FDB_N_LEARNED, IFLA_BR_FDB_MAX_LEARNED = 48, 49
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF


def attr(kind, payload):
    a = struct.pack("=HH", 4 + len(payload), kind) + payload
    return a + b"\0" * (-len(a) % 4)


def attrs(buf):
    out = {}
    while len(buf) >= 4:
        length, kind = struct.unpack_from("=HH", buf)
        if length < 4:
            break
        out[kind & NLA_TYPE_MASK] = buf[4:length]
        buf = buf[(length + 3) & ~3:]
    return out


def request(msg_type, flags, body):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        s.bind((0, 0))
        hdr = struct.pack("=IHHII", 16 + len(body), msg_type, NLM_F_REQUEST | flags, 1, 0)
        s.send(hdr + body)
        reply = s.recv(65536)
    finally:
        s.close()
    length, rtype = struct.unpack_from("=IH", reply)
    if rtype == NLMSG_ERROR:
        (err,) = struct.unpack_from("=i", reply, 16)
        if err:
            sys.exit("kbr-fdb-limit: %s" % os.strerror(-err))
        return None
    return reply[16:length]


def ifinfo(index):
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, 0, 0)


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("set", "get") or \
            (sys.argv[1] == "set") != (len(sys.argv) == 4):
        sys.exit("usage: kbr-fdb-limit.py set BRIDGE N | get BRIDGE")
    try:
        index = socket.if_nametoindex(sys.argv[2])
    except OSError:
        sys.exit("kbr-fdb-limit: no interface named %s" % sys.argv[2])
    if sys.argv[1] == "set":
        data = attr(IFLA_BR_FDB_MAX_LEARNED, struct.pack("=I", int(sys.argv[3])))
        info = attr(IFLA_INFO_KIND, b"bridge\0") + attr(IFLA_INFO_DATA | NLA_F_NESTED, data)
        request(RTM_NEWLINK, NLM_F_ACK, ifinfo(index) + attr(IFLA_LINKINFO | NLA_F_NESTED, info))
        return
    reply = request(RTM_GETLINK, 0, ifinfo(index))
    data = attrs(attrs(attrs(reply[16:]).get(IFLA_LINKINFO, b"")).get(IFLA_INFO_DATA, b""))
    if IFLA_BR_FDB_N_LEARNED not in data or IFLA_BR_FDB_MAX_LEARNED not in data:
        sys.exit("kbr-fdb-limit: this kernel's bridge has no learned-entry limit")
    n = struct.unpack("=I", data[IFLA_BR_FDB_N_LEARNED])[0]
    m = struct.unpack("=I", data[IFLA_BR_FDB_MAX_LEARNED])[0]
    print("n_learned %d max_learned %d" % (n, m))


if __name__ == "__main__":
    main()
