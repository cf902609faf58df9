"""The prompt model (Paddle): PLM embeddings + soft prompt → encoder → hidden states at [MASK] → verbalizer → logits."""
