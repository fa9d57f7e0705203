# Dockerfile -- ratelimit-filter on Debian 12, from Debian packages only.
#
#   docker build -t ratelimit-filter .
#
# One image serves every role of docker-compose.yml: lighttpd with the filter pool, the demo
# backend (lighttpd serving static files) and Redis (Debian's redis-server).

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libfcgi-dev libhiredis-dev libjansson-dev libconfig-dev \
      libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" all \
 && make install-program PREFIX=/usr/local SYSCONFDIR=/etc DESTDIR=/out

FROM debian:12
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libfcgi0ldbl libhiredis0.14 libjansson4 libconfig9 libcurl4 \
      lighttpd lighttpd-modules-lua redis-server curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
COPY etc/lighttpd/ratelimit-headers.lua /etc/ratelimit-filter/ratelimit-headers.lua
COPY etc/docker/ /etc/ratelimit-filter/docker/
RUN ratelimit-filter -t -c /etc/ratelimit-filter/docker/ratelimit.conf
EXPOSE 8080
CMD ["lighttpd", "-D", "-f", "/etc/ratelimit-filter/docker/lighttpd-web.conf"]
