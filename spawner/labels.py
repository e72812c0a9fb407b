"""Names of the Docker labels the platform writes: the one place they are spelled."""

LABEL_DEPLOYMENT = "gpuhub.deployment"  # on every container, volume and network a hub creates
LABEL_USER = "gpuhub.user"  # the owning user, verbatim
LABEL_GPUS = "gpuhub.gpus"  # leased GPU ids, comma-separated
LABEL_LEASED_AT = "gpuhub.leased-at"
LABEL_GPU_MODE = "gpuhub.gpu-mode"
LABEL_ARCHIVE_OF = "gpuhub.archive-of"  # archived workspace: its former owner
LABEL_ARCHIVED_AT = "gpuhub.archived-at"
LABEL_ACCOUNT = "gpuhub.account"  # workspace volume: creation time of the owning account
LABEL_PROFILE = "gpuhub.profile"  # user container: the slug of the profile it was started with


def owner_labels(prefix: str, user: str) -> dict[str, str]:
    """The labels of what a hub creates for one user: its deployment and the user, verbatim."""
    return {LABEL_DEPLOYMENT: prefix, LABEL_USER: user}
