"""`rfm serve`, `rfm score`, `rfm deploy`: the model server, scoring one customer, SageMaker deployment.

Heavy libraries (uvicorn, FastAPI, boto3, scikit-learn through rfm.model) are imported inside the
command functions, so `rfm --help` and the data commands do not pay for them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rfm.cli.common import add_models_dir, model_store, settings_from_args
from rfm.errors import ModelError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the SageMaker-compatible model server (GET /ping, POST /invocations)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--model-dir", metavar="DIR",
                       help="a model directory (model.skops, metadata.json, manifest.json), e.g. /opt/ml/model")
    where.add_argument("--model", metavar="VERSION", help="a version of --models-dir")
    p.add_argument("--models-dir", metavar="DIR",
                   help="versions directory; without --model/--model-dir/SM_MODEL_DIR the promoted version is "
                   "served (default: RFM_MODELS_DIR, then models)")
    p.add_argument("--host", help="address to bind (default 0.0.0.0)")
    p.add_argument("--port", type=int, help="port (default: SAGEMAKER_BIND_TO_PORT, then 8080)")
    p.add_argument("--workers", type=int, help="worker processes (default: SAGEMAKER_MODEL_SERVER_WORKERS, "
                   "MODEL_SERVER_WORKERS, then the CPU count)")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("score", help="score one customer and print the segment as JSON")
    p.add_argument("--recency", type=float, required=True, help="days since the last purchase")
    p.add_argument("--frequency", type=float, required=True, help="number of invoices")
    p.add_argument("--monetary", type=float, required=True, help="net revenue")
    p.add_argument("--endpoint",
                   help="local, http://host:port or sagemaker:NAME (default: RFM_SCORING_ENDPOINT or [scoring] "
                   "endpoint in the settings file, else local)")
    p.add_argument("--model", metavar="VERSION", help="with a local endpoint: the version (default: the current one)")
    add_models_dir(p)
    p.add_argument("--timeout", type=float,
                   help="seconds to wait for a server (default: RFM_SCORING_TIMEOUT, then 10)")
    p.set_defaults(func=cmd_score)

    p = subparsers.add_parser("deploy", help="deploy a model version to a SageMaker real-time endpoint")
    p.add_argument("--model", metavar="VERSION", required=True, help="model version (`rfm models list`)")
    p.add_argument("--endpoint", metavar="NAME", required=True, help="endpoint to create or update")
    p.add_argument("--image-uri", metavar="URI", required=True,
                   help="the inference image in ECR (deploy/push-image.sh prints it)")
    p.add_argument("--role-arn", metavar="ARN", required=True,
                   help="SageMaker execution role (reads the model from S3, pulls the image from ECR)")
    p.add_argument("--bucket", required=True, help="S3 bucket for model.tar.gz")
    p.add_argument("--prefix", default="rfm-models", help="S3 key prefix (default rfm-models)")
    p.add_argument("--instance-type", default="ml.t2.medium", help="default ml.t2.medium")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--region", help="AWS region (default: the AWS chain's)")
    add_models_dir(p)
    p.add_argument("--no-wait", action="store_true", help="return once the endpoint is being created/updated")
    p.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    p.add_argument("--wait-timeout", type=float, default=3600.0, help="give up waiting after this many seconds")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_deploy)


def cmd_serve(args: argparse.Namespace) -> int:
    from rfm.server.__main__ import configure_logging, serve
    from rfm.server.settings import DEFAULT_MODEL_DIR, ServerSettings

    config = settings_from_args(args)
    model_dir = args.model_dir
    if model_dir is None and args.model:
        model_dir = str(model_store(config).path(args.model))
    if model_dir is None and not config.server_model_dir and not os.path.isdir(DEFAULT_MODEL_DIR):
        store = model_store(config)
        current = store.current_version()
        if current is None:
            raise ModelError(f"no model to serve: {config.models_dir} has no promoted version and "
                             f"{DEFAULT_MODEL_DIR} does not exist (use --model-dir or --model)")
        model_dir = str(store.path(current))
    settings = ServerSettings.from_settings(config, model_dir=model_dir, host=args.host, port=args.port,
                                            workers=args.workers)
    configure_logging()
    return serve(settings)


def cmd_score(args: argparse.Namespace) -> int:
    from rfm.service.scoring import scoring_client

    client = scoring_client(settings_from_args(args), args.endpoint, version=args.model, timeout=args.timeout)
    result = client.score(_number(args.recency), _number(args.frequency), _number(args.monetary))
    print(json.dumps(result.as_dict()))
    return 0


def _number(value: float) -> int | float:
    """15.0 -> 15, so the echoed input reads like the command line."""
    return int(value) if value.is_integer() else value


def cmd_deploy(args: argparse.Namespace) -> int:
    from rfm.service import models

    def progress(message: str) -> None:
        print(f"rfm deploy: {message}", file=sys.stderr, flush=True)

    settings = settings_from_args(args)
    result = models.deploy(
        model_store(settings), args.model, args.endpoint, image_uri=args.image_uri,
        role_arn=args.role_arn, bucket=args.bucket, prefix=args.prefix, instance_type=args.instance_type,
        instance_count=args.instance_count, region=args.region, wait=not args.no_wait,
        poll_seconds=args.poll_seconds, timeout_seconds=args.wait_timeout, progress=progress,
        signing_key=settings.model_signing_key,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(f"endpoint {result.endpoint} {result.action}: {result.status} "
              f"(model {result.model_name}, config {result.endpoint_config}, data {result.model_data_url})")
    return 0
