# nginx in front of the web processes: Debian's nginx 1.22, the same one the tests run
# (tests/browser/test_proxy.py). Build context: docker/ (compose does this).
FROM debian:bookworm-slim

# openssl makes the self-signed certificate when none is mounted; curl is the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx openssl curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY nginx.conf /etc/nginx/nginx.conf
COPY nginx-entrypoint.sh /usr/local/bin/nginx-entrypoint
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/nginx-entrypoint"]
CMD ["nginx", "-g", "daemon off;"]
