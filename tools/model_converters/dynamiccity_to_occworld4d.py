"""Convert a released DynamicCity checkpoint (3DTopia/DynamicCity) to occworld4d, or back.

    python tools/model_converters/dynamiccity_to_occworld4d.py SRC DST [--reverse]

Forward: SRC is a reference checkpoint ``ckpts/<name>/<file>.ckpt`` with the run's
``conf.yaml`` beside it (the sizes come from it). A VAE run gives a HexPlaneVAE checkpoint; a
DiT run gives a full generator checkpoint (its VAE run ``ckpts/<vae_name>/`` becomes
``model.tokenizer``; the DiT's EMA weights by default, as the reference samples). The tool
prints the config and the ``--cfg-options`` to give ``tools/test.py`` / ``tools/sample.py``.

Reverse (``--reverse``): SRC is an occworld4d checkpoint (a HexPlaneVAE, or a DynamicCity
generator: its denoiser -> a DiT checkpoint, ``--vae-out`` its tokenizer); DST is written in
the reference layout with ``conf.yaml`` beside it. Logic: :mod:`occworld4d.converters.dynamiccity`.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from occworld4d.converters.common import (converter_parser, run_cli,  # noqa: E402
                                          trust_of)
from occworld4d.converters.dynamiccity import (convert_to_occworld4d,  # noqa: E402
                                               convert_to_reference)


def parse_args(argv=None):
    p = converter_parser(__doc__, 'occworld4d config to build (default: configs/dynamiccity/'
                         'dynamiccity_vae_reference_carlasc.py or '
                         'configs/dynamiccity/dynamiccity_dit_reference_carlasc.py)')
    p.add_argument('--conf', help='the run\'s conf.yaml (default: beside SRC; --reverse: the '
                   'one kept in the checkpoint)')
    p.add_argument('--vae', help='DiT: its VAE checkpoint (default: best of ckpts/<vae_name>/)')
    p.add_argument('--vae-conf', help='DiT: its VAE conf.yaml (default: ckpts/<vae_name>/)')
    p.add_argument('--vae-out', help='--reverse of a generator: also write its VAE here')
    p.add_argument('--weights', choices=('ema', 'model_state_dict'),
                   help='entry of a DiT checkpoint to read (default: ema)')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    trust = trust_of(args)
    if args.reverse:
        print(convert_to_reference(args.src, args.dst, conf=args.conf, vae_out=args.vae_out,
                                   trust=trust))
    else:
        print(convert_to_occworld4d(args.src, args.dst, conf=args.conf, vae=args.vae,
                                    vae_conf=args.vae_conf, weights=args.weights,
                                    config=args.config, trust=trust))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
