"""Domain code shared by every Lambda of the project: channels, prompts, the routing-answer parser,
dataset records, metrics and prices. Pure Python (standard library + boto3 where AWS is touched), written
once and shipped with every function."""
