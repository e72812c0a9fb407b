"""What every gpuhub spawner shares, whatever the engine: the profile chain
(form -> options -> validate -> apply), quotas, the workspace mount, the
site's settings of shm and logs, and progress messages.

``GPUSpawnerMixin`` goes before a DockerSpawner class in the bases
(GPUDockerSpawner on one host, GPUSwarmSpawner on a Swarm). The engine's
class supplies ``gpu_inventory()`` and ``current_leases()``, from which the
spawn page counts free GPUs.
"""

import asyncio
from collections.abc import Mapping

from jupyterhub.traitlets import Callable
from jupyterhub.utils import maybe_future
from tornado import web
from traitlets import Any, Bool, Dict, HasTraits, Int, List, TraitError, Unicode, Union, default, validate

from . import availability, leases, overrides, profiles
from .labels import LABEL_ACCOUNT, owner_labels
from .messages import shown
from .names import WORKSPACE_VOLUME, safe_slug
from .overrides import UnderPlatform
from .sizes import parse_size


def user_error(status: int, message: str) -> web.HTTPError:
    """An error whose message JupyterHub's pages show as it is (cut short: it may echo user input)."""
    message = message if len(message) <= 1000 else message[:999] + "…"
    error = web.HTTPError(status, message)
    error.jupyterhub_message = message
    return error


class GPUSpawnerMixin(HasTraits):
    """Profiles, quotas, workspace and progress of a gpuhub spawner (before a DockerSpawner in the bases)."""

    profile_list = Union(
        [List(), Callable()],
        config=True,
        help="""Profiles offered on the spawn page, in KubeSpawner's shape.

        Each has display_name, slug, description, default, admin_only,
        spawner_override (or kubespawner_override) and profile_options, whose
        choices have a spawner_override each. An override sets settings of this
        spawner by name (gpus, gpu_shared, mem_limit, cpu_limit, shm_size, image,
        environment, volumes, cmd, extra_host_config...) for one spawn: a dict
        is merged key by key onto the configured value (None removes a key),
        anything else replaces it, and the next spawn starts from the configured
        values again. A name that is not a setting, or one the platform keeps
        (hub scopes and hooks, GPU leasing, isolation, names, pids and log
        limits: NOT_IN_PROFILES), is refused when the configuration is loaded,
        naming the profile and key. What wins: the platform's settings
        (cap_drop ALL, no-new-privileges, pids_limit, log_config, shm_size, GPU
        devices, user 1000:100, gpuhub.* labels, NVIDIA_VISIBLE_DEVICES,
        NVIDIA_DRIVER_CAPABILITIES, CUDA_VISIBLE_DEVICES) over the profile's,
        the profile's over the site's. May be a callable taking the spawner,
        sync or async; its result is checked at each use, and a broken one is
        a server error (HTTP 500). Empty: the built-in CPU / 1 GPU / 2 GPUs /
        all GPUs set. Example::

            c.GPUDockerSpawner.profile_list = [{"display_name": "1 GPU",
                "slug": "gpu-1", "spawner_override": {"gpus": 1,
                "environment": {"WANDB_MODE": "offline"}}}]
        """,
    )

    @default("profile_list")
    def _default_profile_list(self):
        return profiles.DEFAULT_PROFILES

    @validate("profile_list")
    def _validate_profile_list(self, proposal):
        if callable(proposal.value):
            return proposal.value
        try:
            return self._checked_profiles(proposal.value)
        except profiles.ProfileError as e:
            raise TraitError(f"{type(self).__name__}.profile_list: {e}") from None

    @classmethod
    def check_config(cls, config) -> None:
        """TraitError, naming the profile and key, if ``config``'s static profile_list is
        broken: jupyterhub_config.py calls it last, so that a bad profile stops the hub at
        start rather than a user's spawn (JupyterHub makes spawners only when needed)."""
        sections = [config[klass.__name__] for klass in cls.mro() if klass.__name__ in config]
        found = [section["profile_list"] for section in sections if "profile_list" in section]
        if found:  # the most specific class's section wins, as in traitlets
            cls().profile_list = found[0]

    def _checked_profiles(self, value) -> list[dict]:
        """A profile_list as the spawner uses it, normalised; empty is the built-in set."""
        return profiles.normalize_profiles(value or profiles.DEFAULT_PROFILES, self._profile_key_problem)

    def _profile_key_problem(self, key: str, value) -> str | None:
        return overrides.key_problem(self, key, value)

    gpu_driver_capabilities = Unicode(
        "compute,utility",
        config=True,
        help="NVIDIA_DRIVER_CAPABILITIES of GPU containers, e.g. ``compute,utility,video``.",
    )

    gpu_quota = Int(
        None,
        allow_none=True,
        config=True,
        help="Most GPUs one user may hold; None is no limit. e.g. ``c.GPUDockerSpawner.gpu_quota = 2``.",
    )

    gpu_group_quotas = Dict(
        value_trait=Int(),
        config=True,
        help="""Per-group GPU maximum; a user gets the most generous of their
        groups' limits. e.g. ``c.GPUDockerSpawner.gpu_group_quotas = {"students": 1}``.
        """,
    )

    gpus = Int(
        0,
        config=True,
        help="GPUs this server leases; normally set by the chosen profile. e.g. ``1``.",
    )

    gpu_shared = Bool(
        False,
        config=True,
        help="Lease GPUs in shared mode (several users per device); set by a profile that opts in.",
    )

    shm_size = Unicode(
        "2G",
        config=True,
        help="""Size of /dev/shm. Docker's 64M default makes PyTorch DataLoader
        workers die with a bus error. e.g. ``c.GPUDockerSpawner.shm_size = "8G"``.
        """,
    )

    @validate("shm_size")
    def _validate_shm_size(self, proposal):
        return parse_size(proposal.value)

    container_log_config = Dict(
        {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
        config=True,
        help="""Docker logging of user containers: rotated, so one user cannot
        fill the disk that holds the hub's database, e.g.
        ``c.GPUDockerSpawner.container_log_config = {"type": "json-file",
        "config": {"max-size": "50m", "max-file": "2"}}``.
        """,
    )

    home_mount = Unicode(
        "/home/jovyan",
        config=True,
        help="Where each user's workspace volume is mounted, e.g. ``/home/jovyan``.",
    )

    shared_data = Unicode(
        "",
        config=True,
        help="Host path or volume mounted read-only at ``shared_data_mount``, e.g. ``/srv/datasets``.",
    )

    shared_data_mount = Unicode(
        "/data",
        config=True,
        help="Mount point of ``shared_data`` in user containers, e.g. ``/data``.",
    )

    @default("escape")
    def _default_escape(self):
        return safe_slug

    @default("remove")
    def _default_remove(self):
        return True  # compute is disposable, the workspace volume is not

    @default("volumes")
    def _default_volumes(self):
        return {WORKSPACE_VOLUME: self.home_mount}

    @property
    def workspace_volume(self):
        return self._render_templates(WORKSPACE_VOLUME)

    @default("read_only_volumes")
    def _default_read_only_volumes(self):
        return {self.shared_data: self.shared_data_mount} if self.shared_data else {}

    hide_gpu_profiles_without_gpus = Bool(
        True,
        config=True,
        help="""On a host without GPUs, leave the profiles that lease GPUs off the
        spawn page; False shows them, disabled, with the reason. REST requests for
        them are refused either way. e.g.
        ``c.GPUDockerSpawner.hide_gpu_profiles_without_gpus = False``.
        """,
    )

    @default("options_form")
    def _default_options_form(self):
        async def options_form(spawner):
            configured = await spawner._profiles()
            offers = await spawner.offers(configured)
            return profiles.render_form(configured, is_admin=spawner.user.admin, offers=offers)

        return options_form

    async def offers(self, configured) -> list[availability.Offer]:
        """The profiles this user may see now, each with its free GPUs, quota and, when it
        cannot start, why (availability.offers); the spawn page shows the latter disabled."""
        try:
            devices = await self.gpu_inventory()
        except ValueError as e:
            raise self._site_error(f"gpu_ids: {e}") from None
        groups = self._group_names()
        gpus = availability.pool(
            [gpu.id for gpu in devices],
            await self.current_leases(),
            user_limit=self.gpu_quota,
            group_limits=self.gpu_group_quotas,
            groups=groups,
        )
        return availability.offers(
            configured,
            gpus,
            groups=groups,
            is_admin=self.user.admin,
            hide_gpu_profiles_without_gpus=self.hide_gpu_profiles_without_gpus,
        )

    def _group_names(self) -> list[str]:
        return [group.name for group in self.user.groups]

    @default("options_from_form")
    def _default_options_from_form(self):
        def options_from_form(formdata):
            try:
                return profiles.options_from_form(formdata)
            except profiles.ProfileError as e:
                raise user_error(400, str(e)) from None

        return options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return type(self)._apply_profile

    # -- profile chain: options -> validate -> apply ------------------------

    async def _profiles(self) -> list[dict]:
        """The profiles, normalised; a callable's result awaited and checked as a static list is."""
        value = self.profile_list
        if not callable(value):
            return value  # checked when configured
        try:
            return self._checked_profiles(await maybe_future(value(self)))
        except web.HTTPError:  # the callable's own answer, e.g. a 403 for this user
            raise
        except Exception as e:  # anything else it raises is the site's error
            raise self._site_error(f"profile_list: {e}") from e

    def _site_error(self, problem: str) -> web.HTTPError:
        """The site's configuration error: logged, and a 500 that does not blame the user."""
        self.log.error("Spawn of %s refused, configuration error: %s", self._log_name, problem)
        detail = f": {problem}" if self.user.admin else " (the hub's log says what)"
        return user_error(500, f"The hub's configuration is broken; an admin must fix it{detail}")

    # JupyterHub 5 assigns a REST body here before anything checks it: one that
    # is not an object must reach _apply_profile and get a 400 there, not fail
    # as a TraitError (HTTP 500).
    user_options = Any(help="The spawn request's choices, checked by the profile chain.")

    _configured = Dict(help="Configured values of the settings this spawn overrides, put back before the next.")

    def _restore_configured(self):
        for key, value in self._configured.items():
            setattr(self, key, profiles.merge({}, value) if isinstance(value, Mapping) else value)
        self._configured = {}

    def clear_state(self):
        """JupyterHub's first step of every spawn, before any hook (and the last of every
        stop): the settings overridden for the last spawn get their configured values back."""
        super().clear_state()
        self._restore_configured()

    def _override(self, key, value):
        """Set ``key`` for this spawn: a dict merges onto the current value (None removes a key)."""
        current = getattr(self, key)
        self._configured.setdefault(key, current)
        if isinstance(current, UnderPlatform):
            value = current.with_override(value)
        elif isinstance(value, Mapping) and isinstance(current, Mapping):
            value = profiles.merge(current, value, drop_none=True)
        setattr(self, key, value)

    def _apply_overrides(self, spawner_override):
        """Each key onto the setting of that name, a callable called with the spawner (for
        the two Docker dicts: at create time). JupyterHub's hook for group_overrides, and ours."""
        for key, value in spawner_override.items():
            if callable(value) and not isinstance(getattr(self, key), UnderPlatform):
                value = value(self)
            self._override(key, value)

    async def _apply_profile(self, user_options):
        """Check the choice (a user's mistake: 400), then apply the chosen profile's overrides.

        The site's mistakes (a broken callable profile_list, gpu_ids naming no GPU) are a
        logged 500. Nothing is applied unless every check passes. The settings start from
        their configured values (clear_state), plus what hooks and group_overrides set.
        """
        configured = await self._profiles()
        try:
            devices = await self.gpu_inventory()
        except ValueError as e:
            raise self._site_error(f"gpu_ids: {e}") from None
        try:
            user_options, requested_image = self._split_image_request(configured, user_options)
            profile = profiles.validate_options(configured, user_options, is_admin=self.user.admin)
            not_yours = availability.group_problem(profile, self._group_names(), is_admin=self.user.admin)
            if not_yours:
                raise user_error(403, f"Profile {profile['slug']!r} is {not_yours}; ask an admin")
            settings = profiles.resolve_overrides(profile, user_options)
            if requested_image is not None:
                settings["image"] = self._requested_image(requested_image)
            settings["gpus"] = profiles.resolve_gpu_count(settings["gpus"], len(devices))
            leases.check_quota(
                settings["gpus"],
                user_limit=self.gpu_quota,
                group_limits=self.gpu_group_quotas,
                groups=self._group_names(),
                is_admin=self.user.admin,
            )
            self._check_image(settings.get("image", self.image))
        except ValueError as e:
            raise user_error(400, str(e)) from None
        try:
            self._apply_overrides(settings)
        except Exception as e:  # a value the site's callable made, or one the trait refuses
            raise self._site_error(f"profile {profile['slug']!r}: {e}") from e
        self.log.info("%s: profile %s, %d GPU(s), image %s", self._log_name, profile["slug"], self.gpus, self.image)
        self._profile_slug = profile["slug"]

    def _split_image_request(self, configured, user_options):
        """(options, image) where ``image`` is DockerSpawner's own ``image`` request
        (a key of allowed_images), for a profile with no option of that name; else None."""
        if not isinstance(user_options, Mapping) or "image" not in user_options:
            return user_options, None
        rest = {key: value for key, value in user_options.items() if key != "image"}
        profile = profiles.validate_options(configured, rest, is_admin=self.user.admin)
        if "image" in profile["profile_options"]:
            return user_options, None
        return rest, user_options["image"]

    def _requested_image(self, choice):
        """An explicit image request, by DockerSpawner's rules (check_allowed)."""
        allowed = self._get_allowed_images()
        if not isinstance(choice, str):
            raise ValueError(f"image must be a string, got {shown(choice)}")
        if allowed == "*":
            return choice
        if not allowed:
            raise ValueError("Specifying image to launch is not allowed")
        if choice not in allowed:
            raise ValueError(f"Image {shown(choice)} is not in allowed_images: {', '.join(allowed)}")
        return allowed[choice]

    def _check_image(self, image):
        """The configured image is always allowed; ``allowed_images`` lists what else profiles may pick."""
        if image == self.image:
            return
        allowed = self._get_allowed_images()
        if allowed != "*" and image not in (allowed or {}).values():
            choices = ", ".join([self.image, *(allowed or {}).values()])
            raise ValueError(f"Image {image!r} is not allowed; allowed images: {choices}")

    async def check_allowed(self, image):
        # user_options["image"] (a profile choice or DockerSpawner's own image
        # request) was resolved and checked by _apply_profile.
        return self.image

    _profile_slug = ""  # the chosen profile's, for accounting by profile (spawner/usage.py)

    def _account(self) -> str:
        """This account's creation time: tells it apart from a removed account of the same name."""
        created = getattr(self.user, "created", None)
        return created.isoformat() if created else ""

    def _workspace_labels(self) -> dict[str, str]:
        """The labels of this user's workspace volume: its owner and the account it belongs to."""
        return {**owner_labels(self.prefix, self.user.name), LABEL_ACCOUNT: self._account()}

    # -- progress ----------------------------------------------------------

    spawn_events = List(help="Progress messages of the spawn under way.")

    def _event(self, message):
        self.spawn_events = [*self.spawn_events, {"message": message}]

    async def start(self):
        self.spawn_events = []
        return await super().start()

    async def progress(self):
        sent = 0
        while True:  # JupyterHub stops iterating when the spawn finishes
            for event in self.spawn_events[sent:]:
                yield event
            sent = len(self.spawn_events)
            await asyncio.sleep(0.5)
