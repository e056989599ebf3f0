"""The registered in-memory dataset of synthetic-city windows."""
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset

from occworld4d.registry import DATASETS, TRANSFORMS
from occworld4d.structures.vocabularies import get_vocabulary
from ..transforms.formatting import PackOccInputs
from .classes import city_label_lut
from .params import PRESETS, SCENARIOS
from .sequence import generate_sequence


@DATASETS.register_module()
class SyntheticCityDataset(BaseDataset):
    """In-memory synthetic driving windows that follow the sample contract.

    Item ``i`` is scene ``i`` generated on the fly from ``(seed, i)``; its scenario cycles
    through ``scenarios``. Labels are mapped to ``vocabulary``.

    Args:
        num_scenes: dataset length.
        num_frames: T frames per window.
        grid_size: (X, Y, Z); default the preset's (e.g. 128 x 128 x 8 for CarlaSC).
        seed: base seed; same seed, same bytes.
        vocabulary: ``'dynamiccity_carlasc'`` | ``'carlasc_raw'`` | ``'occ3d_nuscenes'`` |
            ``'dynamiccity_nuscenes'`` | ``'occ3d_waymo'`` | ``'dynamiccity_waymo'`` |
            ``'synthetic_city'``; default the preset's.
        preset: sensor grid / frame rate (:data:`PRESETS`).
        frame_rate: frames per second (Hz); default the preset's (CarlaSC 10 Hz). E.g. 2.0
            gives OccWorld's 2 Hz keyframe spacing on the CarlaSC grid (0.5 s a frame: the
            same city, ego and agents move 5x farther between frames).
        scenarios: ego behaviours to cycle through.
        masks: visibility masks to attach: ``'valid_mask'`` (CarlaSC: point count > 0),
            ``'mask_lidar'``, ``'mask_camera'``, ``'mask_infov'``.
        pipeline: transforms applied to the window dict of numpy arrays (keys as the
            readers': ``semantics``, masks, ``ego_poses``, ``trajectory``, ``command`` and
            meta keys); empty: packed here into the sample contract.
    """
    MASKS = ('valid_mask', 'mask_lidar', 'mask_camera', 'mask_infov')

    def __init__(self, num_scenes: int = 8, num_frames: int = 16,
                 grid_size: Optional[Sequence[int]] = None, seed: int = 0,
                 vocabulary: Optional[str] = None, preset: str = 'carlasc',
                 scenarios: Sequence[str] = SCENARIOS, masks: Sequence[str] = (),
                 density: float = 1.0, pipeline: Sequence = (), test_mode: bool = False,
                 lazy_init: bool = False, indices=None, frame_rate: Optional[float] = None,
                 **kwargs):
        if preset not in PRESETS:
            raise KeyError(f'SyntheticCityDataset: unknown preset {preset!r}; expected '
                           f'{list(PRESETS)}')
        bad = [s for s in scenarios if s not in SCENARIOS]
        if bad or not scenarios:
            raise ValueError(f'SyntheticCityDataset: scenarios {list(scenarios)} must be a '
                             f'non-empty subset of {SCENARIOS}')
        bad = [m for m in masks if m not in self.MASKS]
        if bad:
            raise ValueError(f'SyntheticCityDataset: unknown masks {bad}; expected {self.MASKS}')
        self.num_scenes, self.num_frames = int(num_scenes), int(num_frames)
        self.preset = preset
        self.grid_size = tuple(int(g) for g in (grid_size or PRESETS[preset].grid_size))
        self.seed, self.scenarios, self.masks = int(seed), tuple(scenarios), tuple(masks)
        self.density = density
        if frame_rate is not None and not float(frame_rate) > 0:
            raise ValueError(f'SyntheticCityDataset: frame_rate must be > 0 Hz, got {frame_rate}')
        self.frame_rate = float(frame_rate or PRESETS[preset].frame_rate)
        self.vocabulary = vocabulary or PRESETS[preset].vocabulary
        self.lut = city_label_lut(self.vocabulary)
        vocab = get_vocabulary(self.vocabulary)
        cfg = PRESETS[preset]
        pc = cfg.pc_range
        metainfo = dict(classes=vocab.classes, free_label=vocab.free_label,
                        pc_range=list(pc), grid_size=list(self.grid_size),
                        voxel_size=[(pc[i + 3] - pc[i]) / self.grid_size[i] for i in range(3)])
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(ann_file='', metainfo=metainfo, serialize_data=False,
                         pipeline=built, test_mode=test_mode, lazy_init=lazy_init,
                         indices=indices, **kwargs)
        # string meta values set here: mmengine would try to open them as meta files
        self._metainfo.update(dataset='synthetic_city', vocabulary=self.vocabulary)

    def load_data_list(self) -> List[dict]:
        return [dict(scene=f'synthetic-{self.seed}-{i:05d}', index=i,
                     scenario=self.scenarios[i % len(self.scenarios)])
                for i in range(self.num_scenes)]

    def load_window(self, info: dict) -> dict:
        """Generate one window as the readers' dict of numpy arrays."""
        seq = generate_sequence(self.num_frames, self.grid_size, self.preset, info['scenario'],
                                seed=self.seed * 1_000_003 + info['index'],
                                frame_rate=self.frame_rate, density=self.density,
                                with_visibility=bool(self.masks))
        out = dict(semantics=self.lut[seq['semantics']], ego_poses=seq['ego_poses'],
                   trajectory=seq['trajectory'], command=int(seq['command']))
        if 'valid_mask' in self.masks:
            out['valid_mask'] = seq['point_counts'] > 0
        if 'mask_lidar' in self.masks:
            out['mask_lidar'] = seq['visible']
        if 'mask_camera' in self.masks:
            out['mask_camera'] = seq['visible']
        if 'mask_infov' in self.masks:
            out['mask_infov'] = seq['infov']
        meta = self.metainfo
        out.update(dataset=meta['dataset'], scene=info['scene'],
                   frame_ids=[f'{t:06d}' for t in range(self.num_frames)],
                   vocabulary=self.vocabulary, free_label=meta['free_label'],
                   voxel_size=meta['voxel_size'], pc_range=meta['pc_range'])
        return out

    def prepare_data(self, idx: int):
        results = self.load_window(self.get_data_info(idx))
        if len(self.pipeline.transforms):
            return self.pipeline(results)
        return pack_window(results)


def pack_window(results: dict) -> dict:
    """Pack a window dict into the sample contract (used with an empty pipeline)."""
    return PackOccInputs()(results)
