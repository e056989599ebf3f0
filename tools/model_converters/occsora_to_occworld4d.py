"""Convert a released OccSora checkpoint (wzzheng/OccSora) to occworld4d, or back.

    python tools/model_converters/occsora_to_occworld4d.py VQVAE.pth DST
    python tools/model_converters/occsora_to_occworld4d.py DIT.pt DST --tokenizer VQVAE.pth
    python tools/model_converters/occsora_to_occworld4d.py SRC DST --reverse [--tokenizer-out F]

Forward: SRC is a tokenizer checkpoint as the reference's ``train_1.py`` saves it
(``{'state_dict', 'optimizer', 'scheduler', 'epoch', ...}``) -> an OccSoraVQVAE checkpoint;
or a DiT checkpoint as ``train_2.py`` saves it (``{'model', 'ema', 'opt', 'args'}``; the EMA
weights unless ``--weights model``) plus ``--tokenizer`` -> a full LatentDiffusion generator
checkpoint. DST loads strictly with the printed config in ``tools/test.py`` /
``tools/sample.py``. Reverse: an occworld4d OccSoraVQVAE checkpoint -> ``{'state_dict'}``;
an OccSora generator -> the DiT file (and its tokenizer with ``--tokenizer-out``). An unknown
or missing key stops the tool with the full list. Logic: :mod:`occworld4d.converters.occsora`.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from occworld4d.converters.common import (converter_parser, run_cli,  # noqa: E402
                                          trust_of)
from occworld4d.converters.occsora import (convert_to_occworld4d,  # noqa: E402
                                           convert_to_reference)


def parse_args(argv=None):
    p = converter_parser(__doc__, 'occworld4d config to load it with (default: the '
                         'Occ3D-nuScenes tokenizer / configs/occsora/occsora_dit_reference_'
                         'occ3d-nuscenes.py)')
    p.add_argument('--tokenizer', help='DiT: the reference tokenizer checkpoint it was '
                   'trained on (the occworld4d generator holds both)')
    p.add_argument('--tokenizer-out', help='--reverse of a generator: also write its tokenizer')
    p.add_argument('--weights', choices=('ema', 'model'),
                   help='entry of a DiT checkpoint to read (default: ema)')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    trust = trust_of(args)
    if args.reverse:
        print(convert_to_reference(args.src, args.dst, tokenizer_out=args.tokenizer_out,
                                   trust=trust))
    else:
        print(convert_to_occworld4d(args.src, args.dst, tokenizer=args.tokenizer,
                                    weights=args.weights, config=args.config, trust=trust))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
