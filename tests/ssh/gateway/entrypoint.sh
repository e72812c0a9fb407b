#!/bin/sh
# Host keys and the researcher's authorized key ($AUTHORIZED_KEY) at start,
# then sshd on $SSH_PORT (host network: 127.0.0.1 is the host's, as the hub's).
set -eu
[ -n "${AUTHORIZED_KEY:-}" ] || { echo "ERROR: AUTHORIZED_KEY is empty" >&2; exit 1; }
ssh-keygen -A -q
install -d -m 700 -o researcher -g researcher /home/researcher/.ssh
printf '%s\n' "$AUTHORIZED_KEY" >/home/researcher/.ssh/authorized_keys
chown researcher:researcher /home/researcher/.ssh/authorized_keys
chmod 600 /home/researcher/.ssh/authorized_keys
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e -p "${SSH_PORT:?}"
