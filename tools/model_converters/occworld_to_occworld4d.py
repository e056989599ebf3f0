"""Convert a released OccWorld checkpoint (wzzheng/OccWorld) to occworld4d, or back.

    python tools/model_converters/occworld_to_occworld4d.py SRC DST [--part vqvae|wm]
    python tools/model_converters/occworld_to_occworld4d.py SRC DST --reverse

Forward: SRC is a checkpoint as the reference's ``train.py`` saves it (``{'state_dict',
'optimizer', 'scheduler', 'epoch', ...}``): a stage-1 VQ-VAE (``VAERes2D``) or a stage-2
world model (``TransVQVAE``, its VQ-VAE included); the part is detected from the keys. DST is
an occworld4d checkpoint (``{'state_dict', 'meta'}``) that the printed config loads strictly
with ``tools/test.py``. Reverse: SRC is an occworld4d OccWorldVQVAE / OccWorld checkpoint; DST
is ``{'state_dict': ...}`` in the reference layout. An unknown or missing key stops the tool
with the full list. Logic: :mod:`occworld4d.converters.occworld`.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from occworld4d.converters.common import (converter_parser, run_cli,  # noqa: E402
                                          trust_of)
from occworld4d.converters.occworld import (convert_to_occworld4d,  # noqa: E402
                                            convert_to_reference)


def parse_args(argv=None):
    p = converter_parser(__doc__, 'occworld4d config to load it with (default: the '
                         'Occ3D-nuScenes VQ-VAE / world-model config)')
    p.add_argument('--part', choices=('vqvae', 'wm'),
                   help='stage-1 VQ-VAE or stage-2 world model (default: from the keys)')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    trust = trust_of(args)
    if args.reverse:
        print(convert_to_reference(args.src, args.dst, part=args.part, trust=trust))
    else:
        print(convert_to_occworld4d(args.src, args.dst, part=args.part, config=args.config,
                                    trust=trust))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
