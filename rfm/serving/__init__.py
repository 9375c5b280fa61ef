"""Scoring customers with a saved model: request records and their validation, scoring clients
(in-process, HTTP, SageMaker) and deployment to a SageMaker endpoint."""
