"""Extractors that misbehave, for the sandbox tests (registered in place of a real one)."""

import time


def hang(data: bytes):
    time.sleep(600)


def hog(data: bytes):
    blocks = []
    while True:
        blocks.append(bytearray(64 << 20))


def crash(data: bytes):
    import os

    os._exit(70)
