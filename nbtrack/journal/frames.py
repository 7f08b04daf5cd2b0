"""A blob made of several byte frames: a model snapshot's pickle stream and its big buffers.

A model is pickled with protocol 5 and its large arrays are kept *out of band*
(``buffer_callback``): the pickle stream stays small and the arrays are written
as they are, without a copy in the kernel. The file holds them one after the
other::

    b"NBTF1\\n"  count (8 bytes, little endian)  length of each frame (8 bytes each)  frames...

The delivery process reads them back as writable buffers for ``pickle.loads``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

MAGIC = b"NBTF1\n"
_SIZE = struct.Struct("<Q")


Buffer = bytes | bytearray | memoryview


def frame_parts(frames: Sequence[Buffer]) -> list[Buffer]:
    """The parts to write, in order, for a blob holding ``frames`` (no frame is copied)."""
    lengths = [memoryview(frame).nbytes for frame in frames]
    header = MAGIC + _SIZE.pack(len(frames)) + b"".join(_SIZE.pack(n) for n in lengths)
    return [header, *frames]


def frames_size(frames: Sequence[Buffer]) -> int:
    """Bytes the frames take (the blob adds a few bytes of header)."""
    return sum(memoryview(frame).nbytes for frame in frames)


def read_frames(path: Path) -> list[bytearray]:
    """The frames of a blob written from :func:`frame_parts`, each a writable buffer."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{path} is not a framed blob")
        (count,) = _SIZE.unpack(f.read(_SIZE.size))
        lengths = [_SIZE.unpack(f.read(_SIZE.size))[0] for _ in range(count)]
        frames = []
        for length in lengths:
            frame = bytearray(length)
            if f.readinto(frame) != length:
                raise ValueError(f"{path} is truncated")
            frames.append(frame)
    return frames
