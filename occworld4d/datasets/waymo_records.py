"""Waymo ego poses without TensorFlow: a TFRecord reader with CRC-32C checks, v1 ``Frame``
parsing (``waymo_open_dataset.dataset_pb2``, protobuf only) and the v2 ``vehicle_pose``
parquet (pyarrow).

TFRecord framing of each record: ``uint64 length | uint32 masked_crc32c(length bytes) |
payload | uint32 masked_crc32c(payload)``, little endian; ``masked(c) = ((c >> 15) |
(c << 17)) + 0xa282ead8`` (mod 2^32). CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)
is computed here in numpy: the payload is split into equal chunks whose CRC registers run
in parallel lanes and are then chained with a precomputed "append L zero bytes" operator
(CRC is linear over GF(2)), so a 2 MB frame checks in milliseconds.
"""
import os.path as osp
import struct
from typing import Iterator, List, Tuple

import numpy as np

from .base import DataFormatError

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8


def _make_table() -> np.ndarray:
    table = np.zeros(256, np.uint32)
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table[n] = c
    return table


_TABLE = _make_table()
_TABLE_PY = [int(v) for v in _TABLE]


def _raw_update(reg: int, data: bytes) -> int:
    """Feed bytes to a CRC register (no pre/post inversion), one byte at a time."""
    for b in data:
        reg = _TABLE_PY[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def _lanes_update(regs: np.ndarray, chunks: np.ndarray) -> np.ndarray:
    """Feed ``chunks`` (M, L) uint8 to M registers (M,) uint32 in parallel."""
    regs = regs.copy()
    for j in range(chunks.shape[1]):
        regs = _TABLE[(regs ^ chunks[:, j]) & 0xFF] ^ (regs >> 8)
    return regs


def _zeros_operator(length: int) -> List[int]:
    """Columns of the linear map 'feed ``length`` zero bytes' on a 32-bit register."""
    basis = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
    return [int(v) for v in _lanes_update(basis, np.zeros((32, length), np.uint8))]


_CHUNK = 2048
_ZEROS_OP = None


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``; ``crc32c(b'123456789') == 0xE3069283``."""
    global _ZEROS_OP
    reg = 0xFFFFFFFF
    n_chunks = len(data) // _CHUNK
    if n_chunks >= 4:
        if _ZEROS_OP is None:
            _ZEROS_OP = _zeros_operator(_CHUNK)
        body = np.frombuffer(data, np.uint8, count=n_chunks * _CHUNK).reshape(n_chunks, _CHUNK)
        partial = _lanes_update(np.zeros(n_chunks, np.uint32), body)  # (M,) raw CRCs from 0
        for p in partial.tolist():
            shifted = 0
            for bit in range(32):
                if reg >> bit & 1:
                    shifted ^= _ZEROS_OP[bit]
            reg = shifted ^ p
        data = data[n_chunks * _CHUNK:]
    return _raw_update(reg, data) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C."""
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def read_tfrecord(path: str, verify: bool = True) -> Iterator[bytes]:
    """Yield the payloads of a TFRecord file.

    Raises:
        DataFormatError: naming the file and byte offset on truncation or a CRC mismatch
            (expected vs found).
    """
    if not osp.isfile(path):
        raise DataFormatError(f'{path}: file not found')
    with open(path, 'rb') as f:
        offset = 0
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise DataFormatError(f'{path}: truncated record header at byte {offset} '
                                      f'(expected 12 bytes, found {len(header)})')
            length_bytes = header[:8]
            (length,) = struct.unpack('<Q', length_bytes)
            (length_crc,) = struct.unpack('<I', header[8:])
            if verify and masked_crc32c(length_bytes) != length_crc:
                raise DataFormatError(
                    f'{path}: length CRC mismatch at byte {offset}: expected '
                    f'{masked_crc32c(length_bytes):#010x}, found {length_crc:#010x}')
            payload = f.read(length)
            footer = f.read(4)
            if len(payload) < length or len(footer) < 4:
                raise DataFormatError(f'{path}: truncated record at byte {offset}: expected '
                                      f'{length} payload bytes + 4 CRC bytes, found '
                                      f'{len(payload)} + {len(footer)}')
            (data_crc,) = struct.unpack('<I', footer)
            if verify:
                expected = masked_crc32c(payload)
                if expected != data_crc:
                    raise DataFormatError(f'{path}: payload CRC mismatch at byte {offset}: '
                                          f'expected {expected:#010x}, found {data_crc:#010x}')
            offset += 16 + length
            yield payload


def _dataset_pb2():
    try:
        from waymo_open_dataset import dataset_pb2
    except ImportError as err:
        raise ImportError('reading Waymo v1 records needs the protobuf modules of the '
                          'waymo-open-dataset wheel: pip install --no-deps -r '
                          'requirements/waymo.txt (and protobuf)') from err
    return dataset_pb2


def read_v1_poses(path: str, verify: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """World-from-vehicle poses of every ``Frame`` in a v1 segment TFRecord.

    Returns:
        poses float64 (N, 4, 4) and timestamps int64 (N,) in microseconds.
    """
    dataset_pb2 = _dataset_pb2()
    poses, stamps = [], []
    for i, payload in enumerate(read_tfrecord(path, verify=verify)):
        frame = dataset_pb2.Frame()
        try:
            frame.ParseFromString(payload)
        except Exception as err:
            raise DataFormatError(f'{path}: record {i} is not a waymo Frame protobuf '
                                  f'({err})') from err
        transform = np.asarray(frame.pose.transform, np.float64)
        if transform.shape != (16,):
            raise DataFormatError(f'{path}: record {i} pose.transform has {transform.size} '
                                  'values, expected 16')
        poses.append(transform.reshape(4, 4))  # row-major
        stamps.append(frame.timestamp_micros)
    return np.stack(poses), np.asarray(stamps, np.int64)


V2_POSE_COLUMN = '[VehiclePoseComponent].world_from_vehicle.transform'
V2_TIME_COLUMN = 'key.frame_timestamp_micros'


def read_v2_poses(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """World-from-vehicle poses from a v2 ``vehicle_pose`` parquet, sorted by time.

    Returns:
        poses float64 (N, 4, 4) and timestamps int64 (N,) in microseconds.
    """
    import pyarrow.parquet as pq
    if not osp.isfile(path):
        raise DataFormatError(f'{path}: file not found')
    try:
        table = pq.read_table(path)
    except Exception as err:
        raise DataFormatError(f'{path}: not a readable parquet file ({err})') from err
    missing = [c for c in (V2_POSE_COLUMN, V2_TIME_COLUMN) if c not in table.column_names]
    if missing:
        raise DataFormatError(f'{path}: missing column(s) {missing}; found '
                              f'{table.column_names}')
    stamps = np.asarray(table.column(V2_TIME_COLUMN).to_pylist(), np.int64)
    flat = np.asarray(table.column(V2_POSE_COLUMN).to_pylist(), np.float64)
    if flat.ndim != 2 or flat.shape[1] != 16:
        raise DataFormatError(f'{path}: {V2_POSE_COLUMN} has shape {flat.shape}, expected '
                              '(N, 16)')
    order = np.argsort(stamps, kind='stable')
    return flat[order].reshape(-1, 4, 4), stamps[order]  # (N, 4, 4) row-major


def read_waymo_poses(path: str, verify: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Poses of one segment from a v1 ``.tfrecord`` or a v2 ``.parquet`` (by extension)."""
    if path.endswith('.parquet'):
        return read_v2_poses(path)
    return read_v1_poses(path, verify=verify)
