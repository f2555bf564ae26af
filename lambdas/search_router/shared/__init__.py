"""What the router and the pipeline share: channels, the routing-answer parser, prompts, model ids. Pure."""
