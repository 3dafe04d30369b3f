#!/usr/bin/env bash
# Make a private CA, a server certificate and client certificates for NATS TLS, with openssl.
#
#     nats/make-certs.sh [OUT_DIR] [SERVER_NAME…]
#
# OUT_DIR defaults to ./certs (tls.conf reads certs/ relative to nats-server's working directory).
# Server names default to localhost and 127.0.0.1; give every host name and address clients use, e.g.
#     nats/make-certs.sh /etc/nats/tls nats1.example.net nats2.example.net nats3.example.net 10.0.0.11
# Writes ca.pem/ca-key.pem, server.pem/server-key.pem, and one client certificate per role
# (admin.pem, agent.pem, hub.pem with their -key.pem) for mutual TLS. Keys are EC P-256, mode 0600.
# The CA key signs everything: keep it off the servers. Existing files are never overwritten.
set -euo pipefail

out=${1:-certs}
shift || true
names=("$@")
((${#names[@]})) || names=(localhost 127.0.0.1)
days=${CERT_DAYS:-825}

mkdir -p "$out"
cd "$out"
umask 077

san() {
    local list=() n
    for n in "$@"; do
        if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then list+=("IP:$n"); else list+=("DNS:$n"); fi
    done
    (IFS=,; echo "${list[*]}")
}

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [[ ! -e ca.pem ]]; then
    key ca-key.pem
    openssl req -x509 -new -key ca-key.pem -sha256 -days "$days" -subj "/CN=swtel NATS CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out ca.pem
fi

# issue NAME CN EXTENDED_KEY_USAGE SUBJECT_ALT_NAMES
issue() {
    [[ -e $1.pem ]] && { echo "$out/$1.pem exists, kept"; return; }
    key "$1-key.pem"
    openssl req -new -key "$1-key.pem" -subj "/CN=$2" -out "$1.csr"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -sha256 -days "$days" \
        -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' "$3" "$4") \
        -out "$1.pem" 2>/dev/null
    rm -f "$1.csr"
    echo "$out/$1.pem"
}

issue server "${names[0]}" serverAuth,clientAuth "$(san "${names[@]}")"
for role in admin agent hub; do
    issue "$role" "swtel-$role" clientAuth "DNS:swtel-$role"
done
chmod 0644 ca.pem server.pem admin.pem agent.pem hub.pem
