#!/bin/sh
# Entrypoint of the worker image (Dockerfile.serverless): Ollama in the background, then the
# RunPod worker in the foreground. The worker polls Ollama until it answers before taking jobs.
set -eu
ollama serve &
exec python -m gpu_handler
