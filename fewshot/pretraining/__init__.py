"""Domain-adaptive pretraining (Paddle): corpus reading and statistics, continued masked-LM training, checkpoint comparison."""
