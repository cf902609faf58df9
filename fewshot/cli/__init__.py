"""The console scripts: ``fewshot-train`` and ``fewshot-export`` (Paddle), ``fewshot-predict`` (no Paddle)."""
