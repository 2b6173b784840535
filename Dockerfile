# promptreg serve, as a container: built in one stage, run as a non-root user in a second.
#   docker build -t promptreg .
#   docker run -p 8080:8080 -v prompts:/data promptreg \
#     -C /data/registry serve --listen 0.0.0.0:8080 --follow https://github.com/acme/prompts.git
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin promptreg

FROM debian:bookworm-slim
# git fetches the followed remote (https with credential helpers, ssh with an agent).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/promptreg promptreg \
 && mkdir /data && chown promptreg /data
COPY --from=build /src/target/release/promptreg /usr/local/bin/promptreg
USER promptreg
WORKDIR /data
VOLUME /data
EXPOSE 8080
# Health: GET /healthz (alive) and /readyz (a snapshot is served; degraded or not), from the
# orchestrator or the load balancer.
ENTRYPOINT ["promptreg"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
