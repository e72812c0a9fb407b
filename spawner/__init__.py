"""gpuhub: a multi-user GPU research platform on JupyterHub + Docker."""

__all__ = ["GPUDockerSpawner", "GPUSwarmSpawner"]


def __getattr__(name):
    # Lazy, so that scripts importing spawner.settings do not load JupyterHub and DockerSpawner.
    if name == "GPUDockerSpawner":
        from .spawner import GPUDockerSpawner

        return GPUDockerSpawner
    if name == "GPUSwarmSpawner":
        from .swarm import GPUSwarmSpawner

        return GPUSwarmSpawner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
