
from .generation import (continue_scene, generate, generate_long, inpaint, load_trajectory,  # noqa: F401
                         outpaint, single_frame, trajectory_preset)
from .inferencer import OccGenerationInferencer, load_generator  # noqa: F401
