"""Every registry of occworld4d, in one place.

Each registry is a child of the mmengine root registry of the same name, with
``locations`` naming the package whose import registers the components. With
``default_scope='occworld4d'`` in a config, the Runner builds every component from
its name without ``custom_imports``: mmengine imports the locations on first use.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry as _MMEngineRegistry


def _in_own_scope(cfg, registry):
    """``cfg``, scoped to ``registry`` where the current default scope cannot build it.

    mmengine builds a config in the registry of the *current* default scope. After a Runner
    of another scope (a plain ``Runner(...)`` leaves ``'mmengine'`` current for the rest of
    the process), ``MODELS.build(dict(type='OccDataPreprocessor'))`` would then look the name
    up in mmengine's root registry and fail. A name the current scope's registry knows builds
    as before (a downstream scope may override it); one only occworld4d knows builds in the
    occworld4d scope, so a build never depends on which Runner ran last.
    """
    if isinstance(cfg, list):  # build_model_from_cfg: a list of configs is a Sequential
        return [_in_own_scope(c, registry) for c in cfg]
    if not isinstance(cfg, dict) or '_scope_' in cfg or not isinstance(cfg.get('type'), str):
        return cfg
    with registry.switch_scope_and_registry(None) as current:
        if current is registry or current.get(cfg['type']) is not None:
            return cfg
    if registry.get(cfg['type']) is None:
        return cfg  # unknown everywhere: mmengine's KeyError names the registry
    cfg = cfg.copy()
    cfg['_scope_'] = registry.scope
    return cfg


class Registry(_MMEngineRegistry):
    """An mmengine registry whose ``build`` does not depend on the current default scope."""

    def build(self, cfg, *args, **kwargs):
        return super().build(_in_own_scope(cfg, self), *args, **kwargs)

RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['occworld4d.engine'])
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor', parent=MMENGINE_RUNNER_CONSTRUCTORS, locations=['occworld4d.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['occworld4d.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['occworld4d.engine'])
LOG_PROCESSORS = Registry(
    'log processor', parent=MMENGINE_LOG_PROCESSORS, locations=['occworld4d.engine'])

DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['occworld4d.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=['occworld4d.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, locations=['occworld4d.datasets.transforms'])

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, locations=['occworld4d.models', 'occworld4d.evaluation'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['occworld4d.models'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS, locations=['occworld4d.models'])

OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, locations=['occworld4d.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['occworld4d.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['occworld4d.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=['occworld4d.engine'])

METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['occworld4d.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=['occworld4d.evaluation'])

TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS,
    locations=['occworld4d.diffusion', 'occworld4d.rendering'])
# The diffusion engine, its schedules and samplers live in TASK_UTILS (mmengine has no root
# for them). A separate child registry of the same scope would be shadowed by TASK_UTILS when
# mmengine switches to the default scope, so DIFFUSION is the same registry under its own name.
DIFFUSION = TASK_UTILS

VISUALIZERS = Registry(
    'visualizer', parent=MMENGINE_VISUALIZERS, locations=['occworld4d.visualization'])
VISBACKENDS = Registry(
    'vis_backend', parent=MMENGINE_VISBACKENDS, locations=['occworld4d.visualization'])

INFERENCERS = Registry('inferencer', parent=MMENGINE_INFERENCERS, locations=['occworld4d.apis'])
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, locations=['occworld4d.datasets'])
