"""Convert a released UniScene occupancy checkpoint (Arlo0o/UniScene) to occworld4d, or back.

    python tools/model_converters/uniscene_to_occworld4d.py SRC DST [--vae VAE] [--reverse]

Forward: SRC is the occupancy VAE (``epoch_<n>.pth``, ``{state_dict, ...}``) or the OccDiT
(``<step>.pt``, ``{model, ema, opt, args}``; EMA weights by default, as the reference
evaluates); an OccDiT needs its VAE (``--vae``), which becomes ``model.tokenizer``. The tool
checks every key and shape against the occworld4d config (default: the reference configs,
``axial_mode='reference'``) and prints the config to test with.

Reverse (``--reverse``): SRC is an occworld4d UniSceneOccVAE or UniScene generator checkpoint,
DST the reference layout (``--vae-out``: also the generator's VAE). Logic:
:mod:`occworld4d.converters.uniscene`.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from occworld4d.converters.common import (converter_parser, run_cli,  # noqa: E402
                                          trust_of)
from occworld4d.converters.uniscene import (convert_to_occworld4d,  # noqa: E402
                                            convert_to_reference)


def parse_args(argv=None):
    p = converter_parser(__doc__, 'occworld4d config (default: configs/uniscene/'
                         'uniscene_{vae,dit}_reference_occ3d-nuscenes.py)')
    p.add_argument('--vae', help='OccDiT: its VAE checkpoint (epoch_<n>.pth)')
    p.add_argument('--vae-out', help='--reverse of a generator: also write its VAE here')
    p.add_argument('--weights', choices=('ema', 'model', 'state_dict'),
                   help='entry to read (default: ema, else state_dict, else model)')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    trust = trust_of(args)
    if args.reverse:
        print(convert_to_reference(args.src, args.dst, vae_out=args.vae_out, trust=trust))
    else:
        print(convert_to_occworld4d(args.src, args.dst, vae=args.vae, weights=args.weights,
                                    config=args.config, trust=trust))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
