"""Export (Paddle): a prompt model's components → bundle (static graph, ONNX, INT8/FP16, manifest)."""
