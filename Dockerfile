# Gatehouse as a container: built from this repository, run as an unprivileged user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/gatehouse

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/gatehouse --create-home gatehouse
COPY --from=build /src/target/release/gatehouse /usr/local/bin/gatehouse
# The default policies (deny by default, plus the examples); mount your own over them.
COPY --from=build --chown=gatehouse /src/config/policies /var/lib/gatehouse/config/policies
USER gatehouse
WORKDIR /var/lib/gatehouse
EXPOSE 8080 8081
STOPSIGNAL SIGTERM
ENTRYPOINT ["gatehouse"]
CMD ["run", "--config", "/etc/gatehouse/gatehouse.yaml"]
