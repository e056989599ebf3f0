"""Waymo ego poses without TensorFlow: a TFRecord reader with CRC-32C checks, v1 ``Frame``
parsing (``waymo_open_dataset.dataset_pb2``, protobuf only) and the v2 ``vehicle_pose``
parquet (pyarrow), cached per segment (:func:`read_waymo_poses`).

TFRecord framing of each record: ``uint64 length | uint32 masked_crc32c(length bytes) |
payload | uint32 masked_crc32c(payload)``, little endian; ``masked(c) = ((c >> 15) |
(c << 17)) + 0xa282ead8`` (mod 2^32). CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)
is computed here in numpy: the payload is split into equal chunks whose CRC registers run
in parallel lanes and are then chained with a precomputed "append L zero bytes" operator
(CRC is linear over GF(2)), so a 2 MB frame checks in milliseconds.
"""
import hashlib
import os
import os.path as osp
import struct
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from occworld4d.structures.errors import DataFormatError
from occworld4d.utils import atomic_path, save_npz_atomic

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


def write_tfrecord(path: str, payloads) -> None:
    """Write payloads (bytes) with TFRecord framing (the inverse of :func:`read_tfrecord`),
    atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            for payload in payloads:
                length = struct.pack('<Q', len(payload))
                f.write(length + struct.pack('<I', masked_crc32c(length)) + payload +
                        struct.pack('<I', masked_crc32c(payload)))


def _dataset_pb2():
    try:
        from waymo_open_dataset import dataset_pb2  # optional package: only for .tfrecord
    except ImportError as err:
        raise ImportError('reading Waymo v1 records needs the protobuf modules of the '
                          'waymo-open-dataset wheel: pip install --no-deps -r '
                          'requirements/waymo.txt (and protobuf)') from err
    return dataset_pb2


def read_v1_poses(path: str, verify: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """World-from-vehicle poses of every ``Frame`` in a v1 segment TFRecord (file order).

    Returns:
        poses float64 (N, 4, 4) and timestamps int64 (N,) in microseconds.
    """
    poses, stamps, _ = _parse_v1_segment(path, verify)
    return poses, stamps


def _parse_v1_segment(path: str, verify: bool = True) -> Tuple[np.ndarray, np.ndarray, str]:
    """Poses, timestamps and ``context.name`` of a v1 segment; parses every record."""
    dataset_pb2 = _dataset_pb2()
    poses, stamps, name = [], [], ''
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
        name = name or frame.context.name
    if not poses:
        raise DataFormatError(f'{path}: no records; expected one waymo Frame per record')
    return np.stack(poses), np.asarray(stamps, np.int64), name


V2_POSE_COLUMN = '[VehiclePoseComponent].world_from_vehicle.transform'
V2_TIME_COLUMN = 'key.frame_timestamp_micros'
V2_SEGMENT_COLUMN = 'key.segment_context_name'


def _read_v2(path: str) -> Tuple[np.ndarray, np.ndarray, str]:
    import pyarrow.parquet as pq  # optional package: only for Waymo v2 parquet files
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
    names = (set(table.column(V2_SEGMENT_COLUMN).to_pylist())
             if V2_SEGMENT_COLUMN in table.column_names else set())
    if len(names) > 1:
        raise DataFormatError(f'{path}: rows of {len(names)} segments {sorted(names)[:3]}; '
                              'expected the vehicle_pose file of one segment')
    return flat.reshape(-1, 4, 4), stamps, (names.pop() if names else '')  # row-major


def read_v2_poses(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """World-from-vehicle poses from a v2 ``vehicle_pose`` parquet, sorted by time.

    Returns:
        poses float64 (N, 4, 4) and timestamps int64 (N,) in microseconds.
    """
    poses, stamps, _ = _read_v2(path)
    order = np.argsort(stamps, kind='stable')
    return poses[order], stamps[order]


class SegmentPoses(NamedTuple):
    """The ego poses of one Waymo segment in time order (frame k = ``poses[k]``)."""
    poses: np.ndarray  # float64 (N, 4, 4) world-from-vehicle
    timestamps: np.ndarray  # int64 (N,) microseconds, strictly increasing
    segment: str  # context.name (v1) / key.segment_context_name (v2); '' if not stored
    path: str


# In-process cache: (real path, size, mtime_ns) -> SegmentPoses (+ whether CRCs were checked).
_SEGMENT_CACHE: Dict[tuple, Tuple[SegmentPoses, bool]] = {}
POSE_CACHE_FORMAT = 'occworld4d-waymo-poses-v1'


def _file_key(path: str) -> tuple:
    if not osp.isfile(path):
        raise DataFormatError(f'{path}: segment file not found')
    st = os.stat(path)
    return osp.realpath(path), int(st.st_size), int(st.st_mtime_ns)


def _disk_cache_path(cache_dir: str, key: tuple) -> str:
    digest = hashlib.md5(key[0].encode()).hexdigest()[:10]
    return osp.join(cache_dir, f'{osp.basename(key[0])}.{digest}.poses.npz')


def _load_disk_cache(path: str, key: tuple, verify: bool) -> Optional[Tuple[SegmentPoses, bool]]:
    if not osp.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = [str(v) for v in data['source']]  # format, real path, size, mtime_ns
            checked = bool(data['crc_checked'])
            if meta != [POSE_CACHE_FORMAT, key[0], str(key[1]), str(key[2])] or \
                    (verify and not checked):
                return None  # stale (the segment changed) or weaker than asked for
            seg = SegmentPoses(data['poses'], data['timestamps'], str(data['segment']),
                               key[0])
    except Exception:  # an unreadable cache is rebuilt, never trusted
        return None
    return seg, checked


def read_waymo_poses(path: str, verify: bool = True, cache_dir: Optional[str] = None
                     ) -> SegmentPoses:
    """Poses of one segment from a v1 ``.tfrecord`` or a v2 ``.parquet`` (by extension),
    sorted by timestamp, cached per segment.

    A v1 segment is parsed whole (every ``Frame``, CRC-checked: seconds to a minute for a
    1 GB segment), so results are cached in this process, keyed by the file's real path,
    size and modification time, and with ``cache_dir`` also on disk
    (``<cache_dir>/<file>.<hash>.poses.npz``, written atomically), reused by later runs
    while the segment file is unchanged.

    Raises:
        DataFormatError: naming the file for a missing / corrupt segment or repeated
            timestamps (frame order would be ambiguous).
    """
    key = _file_key(path)
    hit = _SEGMENT_CACHE.get(key)
    if hit is not None and (hit[1] or not verify):
        return hit[0]
    disk = _disk_cache_path(cache_dir, key) if cache_dir else None
    got = _load_disk_cache(disk, key, verify) if disk else None
    if got is None:
        if path.endswith('.parquet'):
            poses, stamps, name = _read_v2(path)
            checked = True  # parquet pages carry their own checks
        else:
            poses, stamps, name = _parse_v1_segment(path, verify=verify)
            checked = verify
        order = np.argsort(stamps, kind='stable')
        poses, stamps = poses[order], stamps[order]
        repeated = stamps[1:][np.diff(stamps) == 0]
        if repeated.size:
            raise DataFormatError(f'{path}: timestamp(s) {repeated[:3].tolist()} appear more '
                                  'than once; expected one pose per frame')
        got = (SegmentPoses(poses, stamps, name, key[0]), checked)
        if disk:
            os.makedirs(cache_dir, exist_ok=True)
            save_npz_atomic(disk, poses=poses, timestamps=stamps, segment=np.array(name),
                            crc_checked=np.array(checked),
                            source=np.array([POSE_CACHE_FORMAT, key[0], str(key[1]),
                                             str(key[2])]))
    _SEGMENT_CACHE[key] = got
    return got[0]
