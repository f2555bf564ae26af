"""What the stack, the state machine and the handlers agree on: run settings and state, errors, tags."""
