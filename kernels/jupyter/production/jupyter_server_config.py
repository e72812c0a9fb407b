# Jupyter server settings of the PRODUCTION single-user image only
# (images/singleuser), copied to /etc/jupyter/jupyter_server_config.py next to
# the settings both images share (../jupyter_server_config.json, which must not
# set the same keys). The stand-in image has no conda kernels and keeps
# Jupyter's default kernel, python3.
c = get_config()  # noqa: F821 (provided by the Jupyter server's config loader)

# "New notebook" (POST /api/kernels without a name) starts the default kernel.
# Jupyter's default, python3, is the base env's kernel, which conda_only hides:
# starting it answers HTTP 500. The default is the team env python310
# (kernels/python310.yml, built at /opt/conda/envs/python310) instead, under
# the name nb_conda_kernels 2.5.2 gives its kernel: an env in /opt/conda/envs
# keeps its name (nb_conda_kernels/manager.py, _all_envs, lines 235-242) and
# ipykernel's kernel directory "python3" makes "conda-env-<env>-py" (_all_specs,
# lines 290-298); spawner/condakernels.py has the rule, tests/unit checks it.
# A personal env named python310 would take this name: gpuhub_condakernels
# logs a WARNING at server start when it happens.
c.MultiKernelManager.default_kernel_name = "conda-env-python310-py"
