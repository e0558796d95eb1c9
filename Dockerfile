# syntax=docker/dockerfile:1
# kubecode's server image: built from this repository, nothing but the binary on a distroless
# base, running as a non-root user. The lean build (`--no-default-features`) leaves out the
# benchmarks (tokenizer tables, plotting); see README "Run it in a cluster".
#
#   docker build -t kubecode:0.1.0 .
#   helm install kubecode charts/kubecode --set image.repository=kubecode --set image.tag=0.1.0

# Rust as pinned by the workspace (rust-version in Cargo.toml); Debian 12, as the runtime.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the target directory between builds (BuildKit).
# Symbols stripped: the image carries no debugger, and panics still name the message.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --no-default-features -p kubecode \
 && install -D -m 0755 target/release/kubecode /out/kubecode

# glibc and libgcc only (the binary links nothing else: TLS is rustls), no shell, no package
# manager; user and group 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/kubecode /usr/local/bin/kubecode
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kubecode"]
# What the chart runs; the token file comes from a mounted Secret. Beyond loopback kubecode
# refuses to start without a token.
CMD ["serve", "--transport", "http", "--addr", "0.0.0.0:8080", "--auth-token-file", "/var/run/kubecode/token"]
