# A test image for the real-node suite (tests/realnode): the local Debian base, which
# already has sleep, getent and python3 (for a tiny HTTP server behind a Service).
ARG BASE_IMAGE=local/debian:bookworm
FROM ${BASE_IMAGE}
USER 10001:10001
CMD ["sleep", "infinity"]
