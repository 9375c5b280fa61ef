# SageMaker-compatible inference image for the RFM segment model.
#   docker build -t rfm-segments .        (serves the promoted model, models/CURRENT)
#   docker build --build-arg MODEL_VERSION=20261127-084202-k4 -t rfm-segments .
#   docker run -p 8080:8080 rfm-segments serve
# SageMaker runs `docker run IMAGE serve` and mounts the endpoint's model.tar.gz over /opt/ml/model.

# --- the model: only the chosen version's files reach the final image ----------------------------
# A version is model.skops + metadata.json + manifest.json (+ manifest.sig when signed); the server
# verifies them all at start (and never needs skops: it scores from metadata.json's predictor arrays).
FROM python:3.11-slim AS model
ARG MODEL_VERSION=""
COPY models/ /tmp/models/
RUN version="${MODEL_VERSION:-$(cat /tmp/models/CURRENT)}" \
 && src="/tmp/models/${version}" \
 && test -f "${src}/manifest.json" && test -f "${src}/model.skops" && test -f "${src}/metadata.json" \
 && mkdir -p /opt/ml/model \
 && cp "${src}/model.skops" "${src}/metadata.json" "${src}/manifest.json" /opt/ml/model/ \
 && if [ -f "${src}/manifest.sig" ]; then cp "${src}/manifest.sig" /opt/ml/model/; fi

# --- the server ---------------------------------------------------------------------------------
FROM python:3.11-slim
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
LABEL org.opencontainers.image.title="rfm-segments model server"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/opt/program
WORKDIR /opt/program
# The server's runtime dependencies only (requirements-serve.txt): no dashboard, no test tools.
COPY requirements-serve.txt ./
RUN pip install --no-cache-dir -r requirements-serve.txt
# Only what serving needs: the model, the request records and scoring clients, the server, settings and
# errors. No data engine, cloud ingest, dashboard or CLI code ships in the image.
COPY rfm/__init__.py rfm/errors.py rfm/config.py rfm/segments.py ./rfm/
COPY rfm/model/ ./rfm/model/
COPY rfm/serving/ ./rfm/serving/
COPY rfm/server/ ./rfm/server/
COPY --from=model /opt/ml/model/ /opt/ml/model/
EXPOSE 8080
# Exec form: the server is PID 1 and receives SageMaker's SIGTERM. SageMaker appends `serve`.
ENTRYPOINT ["python", "-m", "rfm.server"]
CMD ["serve"]
