# Build and run the `journey` binary (used by docker-compose.yml).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin journey

FROM debian:bookworm-slim
COPY --from=build /src/target/release/journey /usr/local/bin/journey
VOLUME /data
EXPOSE 50051 8080
ENTRYPOINT ["journey"]
CMD ["up", "--data-dir", "/data", "--grpc-addr", "0.0.0.0:50051", "--http-addr", "0.0.0.0:8080"]
