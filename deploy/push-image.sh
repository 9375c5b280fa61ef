#!/usr/bin/env bash
# Build the inference image and push it to Amazon ECR; prints the image URI for `rfm deploy --image-uri`.
#
#   deploy/push-image.sh [REPOSITORY] [TAG]      (defaults: rfm-segments, the promoted model version)
#
# Needs docker and the AWS CLI v2 with credentials allowed to: sts:GetCallerIdentity,
# ecr:DescribeRepositories, ecr:CreateRepository, ecr:GetAuthorizationToken, ecr:BatchCheckLayerAvailability,
# ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:PutImage.
# MODEL_VERSION=... bakes another version into the image (default: models/CURRENT).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repository="${1:-rfm-segments}"
model_version="${MODEL_VERSION:-$(tr -d '[:space:]' < "$root/models/CURRENT")}"
tag="${2:-$model_version}"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}"
if [[ -z "$region" ]]; then
  echo "push-image.sh: no AWS region: set AWS_REGION" >&2
  exit 2
fi
account="$(aws sts get-caller-identity --query Account --output text)"
registry="${account}.dkr.ecr.${region}.amazonaws.com"
uri="${registry}/${repository}:${tag}"

if ! aws ecr describe-repositories --region "$region" --repository-names "$repository" >/dev/null 2>&1; then
  echo "push-image.sh: creating ECR repository $repository in $region" >&2
  aws ecr create-repository --region "$region" --repository-name "$repository" \
    --image-scanning-configuration scanOnPush=true >/dev/null
fi

aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry" >&2

# SageMaker runs linux/amd64 images and rejects multi-manifest (provenance) indexes.
if docker buildx version >/dev/null 2>&1; then
  docker buildx build --platform linux/amd64 --provenance=false --load \
    --build-arg "MODEL_VERSION=$model_version" -t "$uri" "$root" >&2
else
  docker build --platform linux/amd64 --build-arg "MODEL_VERSION=$model_version" -t "$uri" "$root" >&2
fi
docker push "$uri" >&2
echo "$uri"
