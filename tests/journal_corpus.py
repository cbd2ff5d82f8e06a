#!/usr/bin/env python3
"""Write the seed corpus of tests/fuzz_journal.c: small journal files, whole and damaged.

    tests/journal_corpus.py tests/corpus/journal

The format is journal.c's top comment: a 16-byte header, then records of u32 size,
u32 CRC-32C of the body, the body (a type byte first), little-endian. The files are
made here rather than by a daemon so that they are the same on every run and cover
every record type, both DEAD bodies (with and without attempts), dead SUBMITs, keys, ids at
the edges, a record big enough for the resync's checkpoints, and each kind of damage.
"""

import os
import struct
import sys

HDR = b"JOBPOOL JRNL v1\n"
SUBMIT, END, DEAD, RETRY, NEXT, IDEM = 1, 2, 3, 4, 5, 6


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


TABLE = _table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def rec(body):
    return struct.pack("<II", len(body), crc32c(body)) + body


def rid(kind, id_):
    return rec(struct.pack("<BQ", kind, id_))


def submit(id_, queue=b"default", payload=b"x", prio=0, timeout_ms=0, run_at=0,
           attempts=0, dead=None, owner=None, key=None):
    body = struct.pack("<BQBBhIQB", SUBMIT, id_, 1 if dead else 0, attempts, prio,
                       timeout_ms, run_at, len(queue))
    body += queue + struct.pack("<I", len(payload)) + payload
    if dead:
        status, died, reason = dead
        body += struct.pack("<BQH", status, died, len(reason)) + reason
    if owner is not None:
        body += struct.pack("<I", owner)
        if key is not None:
            body += struct.pack("<B", len(key)) + key
    return rec(body)


def dead(id_, reason=b"exit status 3", status=3, died=1764979200000, attempts=None):
    body = struct.pack("<BQBQH", DEAD, id_, status, died, len(reason)) + reason
    if attempts is not None:
        body += struct.pack("<B", attempts)
    return rec(body)


def idem(id_, token, queue=b"default", expires=0, owner=0):
    body = struct.pack("<BQQIB", IDEM, id_, expires, owner, len(queue)) + queue
    body += struct.pack("<B", len(token)) + token
    return rec(body)


def flip(data, off, mask=0x10):
    b = bytearray(data)
    b[off] ^= mask
    return bytes(b)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/corpus/journal"
    os.makedirs(out, exist_ok=True)
    files = {}

    typical = (HDR + rid(NEXT, 1) +
               submit(1, payload=b"hello") +
               submit(2, queue=b"slow", payload=b"30000", prio=-3, timeout_ms=1500) +
               submit(3, payload=b"later", run_at=1764979260000) +
               submit(4, queue=b"short", payload=b"5000", attempts=1) +
               rid(END, 1) +
               dead(4, b"timed out after 100 ms", status=4, attempts=1) +
               submit(5, payload=b"") +
               dead(5, attempts=None) +
               rid(RETRY, 5) +
               submit(6, queue=b"gone", payload=b"\x00\xff binary \r\n") +
               rid(END, 99))
    files["typical"] = typical
    files["empty"] = b""
    files["header-only"] = HDR
    files["header-cut"] = HDR[:9]
    files["next-only"] = HDR + rid(NEXT, 42)
    # A snapshot, as compaction and recovery write it: NEXT, live and dead jobs, NEXT.
    files["snapshot"] = (HDR + rid(NEXT, 1000) +
                         submit(7, payload=b"queued", attempts=2) +
                         submit(8, queue=b"short", payload=b"x", attempts=5,
                                dead=(2, 1764979200000, b"exit status 1")) +
                         submit(9, queue=b"q" * 63, payload=b"longest queue name") +
                         rid(NEXT, 1000))
    # Idempotency tokens: given at the submit, started on the end, given again to a
    # newer job, one of a queue that is gone, one whose record does not decode.
    files["idem"] = (HDR + rid(NEXT, 1) +
                     submit(1, payload=b"a") + idem(1, b"order-1") +
                     submit(2, payload=b"b") + idem(2, b"x" * 64, owner=1000) +
                     rid(END, 1) + idem(1, b"order-1", expires=1764979800000) +
                     submit(3, payload=b"c") + idem(3, b"order-1") +
                     idem(4, b"t", queue=b"gone", expires=1764979800000) +
                     rec(struct.pack("<BQQIB", IDEM, 5, 0, 0, 1) + b"q\x00") +
                     rec(struct.pack("<BQQIB", IDEM, 6, 0, 0, 0)))
    files["ids-edges"] = (HDR + rid(NEXT, 0xFFFFFFFFFFFFFFFF) + submit(0) +
                          submit(0xFFFFFFFFFFFFFFFE) + rid(END, 0xFFFFFFFFFFFFFFFF) +
                          dead(0xFFFFFFFFFFFFFFFE, b"", attempts=255))
    big = submit(20, payload=bytes(range(256)) * 12)
    files["big-after-damage"] = (HDR + rid(NEXT, 1) + flip(submit(19), 12) + big +
                                 submit(21))
    files["flipped-middle"] = flip(typical, len(typical) // 2)
    files["size-flipped"] = flip(typical, 16 + 17 + 1, 0x01)
    files["torn-tail"] = typical[:-5]
    files["bad-header"] = b"JOBPOOL JRNL v2\n" + typical[16:]
    files["foreign"] = b"something else entirely\n" * 4
    junk = bytes((i * 97 + 13) & 0xFF for i in range(300))
    files["junk-between"] = (typical[:16 + 17] + junk + typical[16 + 17:] + junk[:50] +
                             rid(END, 2))
    # Frames whose crc is right and whose bodies are not: unknown type, bad lengths.
    files["checksummed-garbage"] = (HDR + rid(NEXT, 1) + rec(b"\x09" + b"\x00" * 8) +
                                    rec(struct.pack("<BQ", END, 3) + b"extra") +
                                    rec(b"\x01" + b"\x00" * 24 + b"\x00") +
                                    rec(struct.pack("<BQBQH", DEAD, 1, 1, 0, 9) + b"short") +
                                    submit(2) + rid(RETRY, 2))
    # Junk whose size fields claim most of the file, with queue and payload lengths
    # that agree: the resync's worst case, in small.
    huge = bytearray(HDR)
    n = 4096
    while len(huge) + 48 <= n:
        size = (n - len(huge)) // 2 + 40
        cand = struct.pack("<II", size, 0x12345678) + struct.pack("<BQBBhIQB", SUBMIT, 5, 0, 0, 0, 0, 0, 1)
        cand += b"q" + struct.pack("<I", size - 31)
        huge += cand + b"\x00" * (48 - len(cand))
    huge += rid(NEXT, 77)
    files["huge-sizes"] = bytes(huge)
    # Jobs with keys (issue 15): after the owner, u8 klen and the key; a live one, a
    # dead one, the longest key, and a klen that does not match the body.
    files["keys"] = (HDR + rid(NEXT, 1) +
                     submit(1, payload=b"GET /", owner=1000, key=b"example.org") +
                     submit(2, payload=b"x", owner=0, key=b"k" * 255,
                            dead=(2, 1764979200000, b"exit status 1")) +
                     submit(3, owner=1000) +
                     rec(submit(4, owner=1000, key=b"abc")[8:-1]) +
                     rid(END, 1))

    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
