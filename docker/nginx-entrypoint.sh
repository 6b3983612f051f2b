#!/bin/sh
# Starts nginx (or whatever command follows) once $TLS_DIR holds cert.pem and key.pem.
# Provide your own by mounting a directory with those two files (NGINX_TLS_DIR in compose);
# when either is missing, a self-signed certificate for localhost, 127.0.0.1 and ::1 (plus
# the names in $TLS_NAMES, space-separated) is generated there once and kept.
set -eu

TLS_DIR=${TLS_DIR:-/etc/nginx/tls}
cert="$TLS_DIR/cert.pem"
key="$TLS_DIR/key.pem"

if [ ! -s "$cert" ] || [ ! -s "$key" ]; then
    names="DNS:localhost,IP:127.0.0.1,IP:::1"
    for name in ${TLS_NAMES:-}; do
        # An address (IPv6 has colons, IPv4 only digits and dots) or else a DNS name.
        case "$name" in
            *:*) names="$names,IP:$name" ;;
            *[!0-9.]*) names="$names,DNS:$name" ;;
            *) names="$names,IP:$name" ;;
        esac
    done
    mkdir -p "$TLS_DIR"
    # Written beside the final names and moved in one rename each, so a container stopped
    # half-way never leaves a certificate without its key; the key readable by root only.
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
        -subj "/CN=localhost" -addext "subjectAltName=$names" \
        -keyout "$key.new" -out "$cert.new" 2>/dev/null
    chmod 644 "$cert.new"
    mv "$key.new" "$key"
    mv "$cert.new" "$cert"
    echo "nginx-entrypoint: generated a self-signed certificate in $TLS_DIR ($names)" >&2
fi

exec "$@"
