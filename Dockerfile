# execgw: gRPC on 50051, Prometheus metrics on 9108. Configure with EXECGW_* variables; give it a
# PostgreSQL server with EXECGW_DATABASE_URL (without one it runs an embedded PostgreSQL in
# /home/execgw/.local/share/execgw, which belongs on a volume).
FROM python:3.11-slim

RUN groupadd --system --gid 10001 execgw \
 && useradd --system --uid 10001 --gid execgw --create-home --home-dir /home/execgw execgw

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY gateway ./gateway
COPY storage ./storage
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER execgw
ENV EXECGW_GRPC_HOST=0.0.0.0 \
    EXECGW_METRICS_HOST=0.0.0.0 \
    EXECGW_LOG_FORMAT=json \
    EXECGW_SHUTDOWN_DRAIN_SECONDS=5 \
    PYTHONUNBUFFERED=1

EXPOSE 50051 9108
VOLUME ["/home/execgw/.local/share/execgw"]

# Speaks the gRPC health protocol (grpc.health.v1.Health/Check) to the local gateway.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["execgw", "health"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["execgw"]
CMD ["serve"]
