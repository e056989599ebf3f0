# Runtime shared by every config: mmengine Runner defaults, logging, checkpoints.
default_scope = 'occworld4d'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # crash-proof saves, intact-checkpoint resume, strict load_from, no NaN checkpoint
    # (occworld4d/engine/hooks/checkpoint_hook.py; also what type='CheckpointHook' builds)
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # datasets with skip_corrupt=True: the count and distinct errors of the skipped windows
    # after every epoch / validation / test (occworld4d/engine/hooks/data_skip_hook.py)
    data_skip=dict(type='DataSkipReportHook'),
    # stop on a NaN / Inf loss, naming the iteration and terms; max_skip_batches=N skips N
    # bad batches first (occworld4d/engine/hooks/nan_guard_hook.py)
    nan_guard=dict(type='NonFiniteGuardHook', max_skip_batches=0),
    # torch / numpy / python / sampler RNG states of every rank in each checkpoint, restored
    # on resume: bit-identical resume (occworld4d/engine/hooks/rng_state_hook.py)
    rng_state=dict(type='RNGStateHook'),
    # SIGTERM / SIGINT: finish the iteration, save iter_N.pth, exit 128 + signal
    # (occworld4d/engine/hooks/signal_hook.py)
    signal_checkpoint=dict(type='SignalCheckpointHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

# Visualization backends. To log to TensorBoard or W&B too, set in your config (the tools copy
# a child config's vis_backends into the visualizer; tests/test_tools/test_vis_backends.py):
#   vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
#       -> <work_dir>/<timestamp>/vis_data/events.out.tfevents.*  (pip install tensorboard;
#          view with: tensorboard --logdir work_dirs)
#   vis_backends = [dict(type='LocalVisBackend'),
#                   dict(type='WandbVisBackend', init_kwargs=dict(project='occworld4d'))]
#       (pip install wandb; init_kwargs=dict(project='occworld4d', mode='offline') without an
#        account)
# or --cfg-options "vis_backends=[dict(type='LocalVisBackend'),dict(type='TensorboardVisBackend')]"
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')

log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
