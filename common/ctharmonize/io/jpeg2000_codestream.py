"""Structural check of a JPEG 2000 codestream (ISO/IEC 15444-1 Annex A) before it is decoded.

OpenJPEG (and every decoder pydicom can use) decodes many damaged codestreams without an error:
garbage bytes in the entropy-coded data give a wrong image and no warning. This check verifies
what the standard guarantees for every conformant codestream, without decoding:

* the main header starts with SOC, SIZ; every marker segment has a valid length; the image size
  and component count in SIZ match the DICOM header (Rows, Columns, SamplesPerPixel);
* the tile-parts follow each other exactly as their SOT lengths (Psot) say, and the codestream
  ends with EOC (bytes inserted, removed or cut off break this chain);
* inside the entropy-coded tile data no two-byte sequence 0xFF90..0xFFFF occurs other than the
  SOP / EPH markers: bit stuffing in the packet headers and the MQ / raw coders rules them out
  (A.1.1, B.10.1, C.1.3), so such a pair is corrupted data.

It cannot see garbage that obeys these rules (about 7 in 10 runs of 200 random bytes written over
the entropy-coded data of a small image): JPEG 2000 carries no checksum.
"""

from __future__ import annotations

import os
import struct

from ctharmonize.errors import CorruptFileError

__all__ = ["check_codestream", "JP2_SIGNATURE"]

#: First 12 bytes of a JP2 file (a codestream wrapped in boxes; non-conformant in DICOM but decoded).
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"

_SOC, _SIZ, _SOT, _SOD, _EOC, _SOP, _EPH = 0xFF4F, 0xFF51, 0xFF90, 0xFF93, 0xFFD9, 0xFF91, 0xFF92


def _unwrap_jp2(data: bytes, path: str | os.PathLike) -> bytes:
    """The contiguous codestream box (``jp2c``) of a JP2 file."""
    pos = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if length == 1:
            if pos + 16 > len(data):
                break
            length, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif length == 0:
            length = len(data) - pos
        if length < header:
            break
        if kind == b"jp2c":
            return data[pos + header:pos + length]
        pos += length
    raise CorruptFileError(path, "corrupted JPEG 2000 data: JP2 file without a codestream box")


def _fail(path: str | os.PathLike, problem: str) -> CorruptFileError:
    return CorruptFileError(path, f"corrupted JPEG 2000 codestream: {problem}")


def _scan_tile_data(data: bytes, start: int, end: int, path: str | os.PathLike) -> None:
    """No marker code 0xFF90..0xFFFF in [start, end) other than SOP (with Lsop 4) and EPH."""
    j = data.find(b"\xff", start, end)
    while j != -1 and j + 1 < end:
        code = data[j + 1]
        if code > 0x8F:
            if code == 0x91 and data[j + 2:j + 4] == b"\x00\x04":  # SOP: Lsop = 4, Nsop
                j = data.find(b"\xff", j + 6, end)
                continue
            if code == 0x92:  # EPH
                j = data.find(b"\xff", j + 2, end)
                continue
            raise _fail(path, f"marker code FF{code:02X} inside the entropy-coded data at byte {j} "
                              "(bit stuffing rules it out in valid data)")
        j = data.find(b"\xff", j + 1, end)


def check_codestream(
    data: bytes,
    rows: int,
    columns: int,
    samples_per_pixel: int = 1,
    path: str | os.PathLike = "",
    *,
    scan_entropy_data: bool = True,
) -> None:
    """Raise :class:`CorruptFileError` if ``data`` (one frame) is not a well-formed codestream.

    Args:
        data: the frame's bytes (a raw codestream, or a JP2 file, which is unwrapped).
        rows, columns, samples_per_pixel: the DICOM header's image size, compared with SIZ.
        path: the DICOM file, named in the error.
        scan_entropy_data: also look for marker codes inside the tile data (Part 1 rules; set
            False for codestreams whose block coder does not follow them).
    """
    if data[:12] == JP2_SIGNATURE:
        data = _unwrap_jp2(data, path)
    n = len(data)
    if n < 4 or struct.unpack(">HH", data[:4]) != (_SOC, _SIZ):
        raise _fail(path, "it does not start with the SOC and SIZ markers")
    pos = 2
    while True:  # main header: marker segments up to the first SOT
        if pos + 4 > n:
            raise _fail(path, "the main header is cut off (no tile-part follows)")
        marker, length = struct.unpack(">HH", data[pos:pos + 4])
        if marker == _SOT:
            break
        if marker >> 8 != 0xFF or marker < 0xFF30 or length < 2 or pos + 2 + length > n:
            raise _fail(path, f"invalid main-header marker segment {marker:04X} at byte {pos}")
        if marker == _SIZ:
            if length < 41:
                raise _fail(path, f"SIZ segment of {length} bytes is too short")
            xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", data[pos + 6:pos + 22])
            (components,) = struct.unpack(">H", data[pos + 38:pos + 40])
            width, height = xsiz - xosiz, ysiz - yosiz
            if (width, height) != (columns, rows):
                raise _fail(path, f"SIZ says {width} x {height} pixels, the DICOM header "
                                  f"{columns} x {rows} (Columns x Rows)")
            if components != samples_per_pixel:
                raise _fail(path, f"SIZ says {components} components, SamplesPerPixel is {samples_per_pixel}")
        pos += 2 + length
    while True:  # tile-parts, each exactly as long as its Psot says, then EOC
        if pos + 2 > n:
            raise _fail(path, f"it ends at byte {n} without the EOC marker (truncated)")
        (marker,) = struct.unpack(">H", data[pos:pos + 2])
        if marker == _EOC:
            return  # bytes after EOC (fragment padding) are ignored by every decoder
        if marker != _SOT or pos + 12 > n:
            raise _fail(path, f"expected a tile-part (SOT) or EOC at byte {pos}, found {marker:04X}")
        lsot, _tile, psot = struct.unpack(">HHI", data[pos + 2:pos + 10])
        end = pos + psot if psot else data.rfind(b"\xff\xd9")  # Psot 0: the last tile-part, up to EOC
        if end <= pos:
            raise _fail(path, f"the last tile-part at byte {pos} is not followed by EOC (truncated)")
        if lsot != 10 or (psot and psot < 14) or end > n:
            raise _fail(path, f"tile-part at byte {pos} claims {psot} bytes, {n - pos} remain")
        cursor = pos + 2 + lsot
        while True:  # tile-part header up to SOD
            if cursor + 2 > end:
                raise _fail(path, f"tile-part at byte {pos} has no SOD marker")
            (marker,) = struct.unpack(">H", data[cursor:cursor + 2])
            if marker == _SOD:
                cursor += 2
                break
            if cursor + 4 > end:
                raise _fail(path, f"tile-part header at byte {cursor} is cut off")
            (length,) = struct.unpack(">H", data[cursor + 2:cursor + 4])
            if marker >> 8 != 0xFF or marker < 0xFF30 or length < 2 or cursor + 2 + length > end:
                raise _fail(path, f"invalid tile-part marker segment {marker:04X} at byte {cursor}")
            cursor += 2 + length
        if scan_entropy_data:
            _scan_tile_data(data, cursor, end, path)
        pos = end
