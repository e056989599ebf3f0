"""occworld4d: generation and forecasting of 4D semantic occupancy on mmengine."""
import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name):
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'requirements', name)
    with open(path) as f:
        lines = [line.split('#')[0].strip() for line in f]
    return [line for line in lines if line and not line.startswith('-')]


def read_version():
    scope = {}
    with open(osp.join('occworld4d', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='occworld4d',
    version=read_version(),
    description='4D semantic occupancy generation and forecasting (DynamicCity, OccSora, '
                'OccWorld, UniScene) on mmengine',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools', 'projects')),
    # torch is a documented prerequisite (CPU or CUDA build chosen by the user).
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'tests': read_requirements('tests.txt'),
        'nuscenes': ['nuscenes-devkit>=1.1.11'],
        'waymo': ['protobuf>=4.21', 'pyarrow>=12'],
        'vis': ['tensorboard', 'wandb'],
        'flash': ['flash-attn>=2.5'],
        'mmdet3d': ['mmcv>=2.0.0', 'mmdet>=3.0.0', 'mmdet3d>=1.1.0'],
    },
    zip_safe=False,
)
