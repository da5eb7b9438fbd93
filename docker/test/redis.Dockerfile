# Redis from Debian's package, standing in for the official redis:7 image where no registry can be
# reached (scripts/container.sh test-images): redis-server, redis-cli and docker-entrypoint.sh on PATH,
# data in /data, protected mode off as in the official image (docker-entrypoint.sh).
ARG DEBIAN_RELEASE=12.8
FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
