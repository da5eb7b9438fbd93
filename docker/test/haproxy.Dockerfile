# HAProxy 2.6 from Debian's package, standing in for the official haproxy:2.6 image where no registry
# can be reached (scripts/container.sh test-images): the configuration at the official image's path,
# run in the foreground as the haproxy user.
ARG DEBIAN_RELEASE=12.8
FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /usr/local/etc/haproxy
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
