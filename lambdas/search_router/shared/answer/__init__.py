"""Routing answers: parse, validate, normalize, stream and format the router's JSON.

A router answer is one JSON object with a weight per channel (each in [0, 1], summing to 1) followed by a
short ``reasoning`` string, for example::

    {"visual":0.8,"audio":0.0,"transcription":0.0,"metadata":0.2,"reasoning":"Scenery is visual."}

Models do not always answer like that, so :func:`~search_router.shared.answer.parser.parse_routing_answer` is
forgiving about the wrapping (prose, code fences, key case, trailing commas, comments, single quotes, truncation
after the weights) and strict about the numbers (no booleans, no NaN, no percentages, no silent fix of a wrong
sum). It never raises and runs in time linear in the (capped) input.

The modules, from the bottom up (import each name from the module that defines it):

* :mod:`.detail`: how failure details quote the answer's text.
* :mod:`.lexer`: the tokenizer: incremental, string-aware, tolerant; no backtracking regexes.
* :mod:`.builder`: the tree builder: tolerant, iterative, keeps partial containers visible.
* :mod:`.decision`: :class:`RoutingDecision`, the parse results and the validation and normalization of the
  channel weights (shared by the parser, the streaming reader and ``RoutingDecision.from_weights``).
* :mod:`.parser`: :func:`parse_routing_answer`, the entry point over a whole answer.
* :mod:`.streaming`: :class:`StreamingWeightsReader`: the same tokenizer, builder and validation over a token
  stream, yielding the weights as soon as they are complete, before the reasoning arrives.
* :mod:`.formatting`: :func:`format_answer`, the canonical form used for training targets and prompts.
"""
