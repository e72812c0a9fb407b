#!/usr/bin/env bash
# SSH into one's own container (README "From your laptop"), the same in both
# single-user images: OpenSSH's sshd, started as the user by jupyter-sshd-proxy
# with the options of jupyter_server_config.py beside this (copied by the
# Dockerfile). No host key of the image's own (each workspace makes its key)
# and no setuid helper (ssh-keysign). Run as root, with the image's pip first
# on PATH:
#   COPY images/sshd/install.sh images/sshd/requirements.txt /tmp/sshd/
#   RUN bash /tmp/sshd/install.sh && rm -r /tmp/sshd
set -euo pipefail

apt-get update
# sshd (and ssh-keygen for the workspace's host key)
apt-get install -y --no-install-recommends openssh-server
apt-get clean
rm -rf /var/lib/apt/lists/*
rm -f /etc/ssh/ssh_host_*
chmod u-s /usr/lib/openssh/ssh-keysign
pip install -r "$(dirname "$0")/requirements.txt"
