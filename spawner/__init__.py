"""gpuhub: a multi-user GPU research platform on JupyterHub + Docker."""

from .spawner import GPUDockerSpawner

__all__ = ["GPUDockerSpawner"]
