"""Training (Paddle): arguments with fewshot's defaults, losses per task activation, the PaddleNLP Trainer wrapper."""
