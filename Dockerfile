# rampart's image: the four daemons on Debian 12, built from source.
#
#   docker build -t rampart:latest .
#   docker run --rm rampart:latest rampart-api --help
#
# Two stages: "build" has the compiler and the -dev packages and runs `make`;
# the runtime stage has only the shared libraries the binaries link (checked
# against ldd by scripts/check-image-libs.sh in `make test`), curl for the
# healthchecks, and a non-root user. The daemons take every setting from the
# environment (README, SPEC §2); none writes to the filesystem, so the root
# filesystem may be mounted read-only.

# ---- build -----------------------------------------------------------------
FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
        gcc make pkg-config libc6-dev python3-yaml \
        libevent-dev libhiredis-dev libjansson-dev libcurl4-openssl-dev libpq-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY scripts/ scripts/
COPY common/ common/
COPY services/ services/
COPY db/ db/
# Embedded in rampart-api (GET /openapi.json), converted by python3-yaml.
COPY docs/openapi.yaml docs/
RUN make -j"$(nproc)" all

# ---- runtime ---------------------------------------------------------------
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# The shared libraries the binaries link: scripts/check-image-libs.sh (make
# test) checks this list against ldd, so a missing one fails the tests, not
# the container's start.
ARG RUNTIME_PACKAGES="libevent-2.1-7 libevent-pthreads-2.1-7 libhiredis0.14 libjansson4 libcurl4 libpq5 libssl3"
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends $RUNTIME_PACKAGES ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 rampart \
 && useradd --system --uid 10001 --gid rampart --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin rampart
COPY --from=build /src/bin/rampart-api /src/bin/rampart-worker /src/bin/rampart-webhook \
     /src/bin/rampart-feeengine /usr/local/bin/
USER 10001:10001
ENV LOG_FORMAT=json
EXPOSE 8080 9101 9102 9103
# Every daemon drains on SIGTERM (SHUTDOWN_GRACE_SECONDS) and exits 0.
STOPSIGNAL SIGTERM
CMD ["rampart-api"]
