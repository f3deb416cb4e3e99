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
RUN pip install --no-cache-dir ".[otlp]" && rm -rf /root/.cache

USER execgw
# Plaintext gRPC on all interfaces of the container (the gateway logs a warning at every start):
# for any network beyond a private one, mount a certificate and key, set EXECGW_TLS_CERT_FILE and
# EXECGW_TLS_KEY_FILE (and EXECGW_CLIENTS_FILE) and set EXECGW_ALLOW_INSECURE=false; the
# HEALTHCHECK then needs EXECGW_CLIENT_CA_FILE (the certificate must name 127.0.0.1).
ENV EXECGW_GRPC_HOST=0.0.0.0 \
    EXECGW_ALLOW_INSECURE=true \
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
