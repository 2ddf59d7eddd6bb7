# syntax=docker/dockerfile:1
# One image for every role of the shop: `ecommerce serve --role <role>` (see the Helm chart in
# deploy/helm/ecommerce). Build: `docker build -t ecommerce:0.1.0 .`

# ---- build ---------------------------------------------------------------------------
# The release binary, built with the same command the tests build and check
# (tests/chart/test_chart.py asserts this line is here, unchanged).
FROM rust:1-slim-bookworm AS builder
WORKDIR /src

# ---- front-end build: not needed today -------------------------------------------------
# The web bundle is committed under assets/web and embedded into the binary by build.rs,
# so there is no Node stage. If the bundle is ever built from web/ instead, add a
# `FROM node:... AS web` stage here that writes assets/web, and
# `COPY --from=web /web/dist/ assets/web/` below, before `cargo build`.

COPY . .
# The registry cache only speeds up rebuilds; target/ stays in the layer so the binary
# can be copied out. sharing=locked: a multi-platform build (buildx, linux/amd64 and
# linux/arm64) runs this step once per platform at the same time, and two cargo processes
# in different containers do not see each other's lock on the shared registry.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo build --release --locked
# The binary links only glibc and libgcc_s (it makes no TLS connections): take libgcc_s
# along, at its multiarch path, for a base image without OpenSSL or libstdc++. Every stage
# runs on the target platform (under QEMU emulation when it is not the builder's, as in
# .github/workflows/release.yml), so gcc names the target's own path
# (x86_64-linux-gnu, aarch64-linux-gnu) and no TARGETARCH is needed.
RUN lib=/lib/$(gcc -print-multiarch)/libgcc_s.so.1 && install -D "$lib" "/out$lib"

# ---- run -----------------------------------------------------------------------------
# distroless "base-nossl": glibc, CA certificates, tzdata; no shell, no package manager.
# About 15 MB + libgcc_s + the 8 MB binary.
FROM gcr.io/distroless/base-nossl-debian12:nonroot
COPY --from=builder /out/ /
COPY --from=builder /src/target/release/ecommerce /usr/local/bin/ecommerce
# The numeric form of distroless' `nonroot` user (65532): Kubernetes can only enforce
# runAsNonRoot against a numeric USER.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["ecommerce"]
CMD ["serve", "--role", "all", "--listen", "0.0.0.0:8080"]
