# Dockerfile -- ratelimit-filter on Debian 12, from Debian packages only.
#
#   docker build -t ratelimit-filter .
#
# One image serves every role of docker-compose.yml: lighttpd with the filter pool, the demo
# backend (lighttpd serving static files) and Redis (Debian's redis-server). .dockerignore
# keeps the host's build/ out: the build stage compiles from the sources alone.
# tests/docker/run builds it and runs the compose file for real (make test-docker).

FROM debian:12 AS build
# Both stages carry this label, so that superseded and build-stage images, once untagged, can
# be pruned without touching anyone else's: docker image prune -f --filter label=ratelimit-filter
LABEL ratelimit-filter=build
# libcurl4-openssl-dev for rl-burst only (make all builds it): the filter speaks HTTP/1.1 to
# proxy.backend itself and does not link libcurl.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libfcgi-dev libhiredis-dev libjansson-dev libconfig-dev \
      libcurl4-openssl-dev libpcre2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" all \
 && make install-program PREFIX=/usr/local SYSCONFDIR=/etc DESTDIR=/out

FROM debian:12
LABEL ratelimit-filter=runtime
# The filter's libraries, lighttpd and redis-server; curl (which needs libcurl4 anyway) for
# trying the stack from inside a container: the installed program does not use libcurl.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libfcgi0ldbl libhiredis0.14 libjansson4 libconfig9 libcurl4 libpcre2-8-0 \
      lighttpd lighttpd-modules-lua redis-server curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
COPY etc/lighttpd/ratelimit-headers.lua /etc/ratelimit-filter/ratelimit-headers.lua
COPY etc/docker/ /etc/ratelimit-filter/docker/
# Where the lighttpd configurations in etc/docker/ listen and find the backend (lighttpd reads
# them as env.*). Inside the container's own network namespace, so all addresses; the compose
# file publishes 8080 on the host's 127.0.0.1 only. tests/docker/run, on the host's network,
# sets 127.0.0.1 and free ports.
ENV RL_BIND=0.0.0.0 RL_WEB_PORT=8080 RL_BACKEND_HOST=backend RL_BACKEND_PORT=8081
# -t, not -tt, for web: -tt resolves the backend's name, which exists only under compose.
RUN ratelimit-filter -t -c /etc/ratelimit-filter/docker/ratelimit.conf \
 && lighttpd -tt -f /etc/ratelimit-filter/docker/lighttpd-backend.conf \
 && lighttpd -t -f /etc/ratelimit-filter/docker/lighttpd-web.conf
EXPOSE 8080
CMD ["lighttpd", "-D", "-f", "/etc/ratelimit-filter/docker/lighttpd-web.conf"]
