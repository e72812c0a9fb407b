#!/usr/bin/env bash
# Add the certificates of a PEM bundle (e.g. the CA of a TLS-intercepting
# proxy) to the system trust store, one file per certificate, skipping those
# the store already has. An empty bundle adds nothing. Used by every Dockerfile:
#   COPY images/trust-extra-ca.sh .build/extra-ca.crt /tmp/
#   RUN bash /tmp/trust-extra-ca.sh /tmp/extra-ca.crt
set -euo pipefail

bundle=$1
store=/etc/ssl/certs/ca-certificates.crt
dir=/usr/local/share/ca-certificates

# One line per certificate: its base64 body without whitespace.
bodies() {
    awk '/-----BEGIN CERTIFICATE-----/ { body = ""; inside = 1; next }
         /-----END CERTIFICATE-----/ { print body; inside = 0 }
         inside { gsub(/[ \t\r]/, ""); body = body $0 }' "$1"
}

known=$(bodies "$store")
total=0 added=0
while IFS= read -r body; do
    total=$((total + 1))
    grep -qxF -- "$body" <<<"$known" && continue
    {
        echo "-----BEGIN CERTIFICATE-----"
        fold -w 64 <<<"$body"
        echo "-----END CERTIFICATE-----"
    } >"$dir/gpuhub-extra-$total.crt"
    added=$((added + 1))
done < <(bodies "$bundle")
echo "extra CA: $added certificate(s) added, $((total - added)) already trusted"
update-ca-certificates
