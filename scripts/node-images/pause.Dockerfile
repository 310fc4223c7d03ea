# The pod sandbox image of the real-node cluster: one static binary (pause.c).
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
