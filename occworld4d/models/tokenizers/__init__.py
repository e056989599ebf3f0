from .base import BaseTokenizer, attach_predictions

__all__ = ['BaseTokenizer', 'attach_predictions']
from .rollout import PaddedRollout  # noqa: E402,F401
from .grid_adapter import GridLatentAdapter  # noqa: E402,F401
from .quantizers import QuantizerOutput, VectorQuantizer  # noqa: E402,F401
from .vqvae_2d import OccWorldVQVAE  # noqa: E402,F401
from .vqvae_4d import TOKEN_PRESETS, OccSoraVQVAE  # noqa: E402,F401
from .hexplane_vae import HexPlaneVAE  # noqa: E402,F401
from .kl_vae import UniSceneOccVAE  # noqa: E402,F401
