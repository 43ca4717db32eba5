# lvsd container image: a build stage compiles the AF_PACKET addon and the TypeScript and lays out
# exactly what the .deb installs (scripts/build-deb.sh); the runtime stage is node's slim image with
# that tree, running as the unprivileged user lvsd.
#
#   docker build -t lvsd .
#   docker run --network host --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW \
#     [--ulimit rtprio=1] -v /etc/lvsd:/etc/lvsd:ro lvsd
#
# Capabilities: NET_ADMIN (VIPs, IPVS netlink, sync daemon) and NET_RAW (VRRP, GARP/NA) only.
# They reach the non-root user as file capabilities on node (Docker gives a non-root user no
# ambient capabilities). SYS_NICE is not needed: `--ulimit rtprio=1` allows the takeover thread's
# SCHED_FIFO priority 1 (sched(7), RLIMIT_RTPRIO). The IPVS table is the host kernel's (ip_vs).
# test/deploy/docker.test.ts lints this file and runs the build stage's steps.

FROM node:20.20.2-bookworm AS build
WORKDIR /src
# Dependencies first (a cached layer while only sources change); `npm ci` runs the package's
# install script, which builds native/afpacket with node-gyp.
COPY package.json package-lock.json ./
COPY scripts/install-native.mjs scripts/
COPY native/afpacket native/afpacket
RUN npm ci --no-audit --no-fund
COPY tsconfig.json README.md ./
COPY bin bin
COPY src src
COPY docs docs
COPY examples examples
COPY deploy deploy
COPY scripts scripts
RUN npx tsc -p tsconfig.json \
 && scripts/build-deb.sh /out \
 && dpkg-deb -x /out/lvsd_*.deb /out/root

FROM node:20.20.2-bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/root/usr/lib/lvsd /usr/lib/lvsd
COPY --from=build /out/root/etc/lvsd /etc/lvsd
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && setcap cap_net_admin,cap_net_raw+ep "$(readlink -f /usr/local/bin/node)" \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/lib/lvsd/bin/lvsd /usr/local/bin/lvsd \
 && groupadd --system lvsd \
 && useradd --system --gid lvsd --home-dir /var/lib/lvsd --shell /usr/sbin/nologin lvsd \
 && install -d -o lvsd -g lvsd -m 0750 /run/lvsd /var/lib/lvsd
USER lvsd
EXPOSE 9650
ENTRYPOINT ["lvsd"]
CMD ["run", "-c", "/etc/lvsd/lvsd.yaml"]
