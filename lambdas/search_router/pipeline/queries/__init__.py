"""Search queries to label: a deterministic synthesizer and the user's own query files.

Two sources feed the teacher:

* :func:`~search_router.pipeline.queries.synthesis.synthesize_queries` fills templates from a built-in vocabulary
  (``vocabulary.json``, read by :mod:`.vocabulary`). Categories are one ``<channel>_dominant`` per channel,
  ``balanced`` (two channels matter about equally) and ``complex`` (long, multi-detail queries spanning two or
  three channels). A mix (:mod:`.mix`) says which share of the queries each category gets; counts are exact
  (largest-remainder rounding). Output is deterministic for a seed and de-duplicated with
  :func:`~search_router.pipeline.queries.query.normalize_query`.
* :func:`~search_router.pipeline.queries.user_files.parse_user_queries` reads a ``.txt``, ``.jsonl`` or ``.csv``
  file of real queries (search logs are the best distillation prompts) and counts every line it skips, by reason.

:func:`~search_router.pipeline.queries.planning.plan_queries` combines both into the list the pipeline labels.
The modules: :mod:`.query` (the query value and its text rules), :mod:`.mix`, :mod:`.vocabulary`,
:mod:`.synthesis`, :mod:`.user_files`, :mod:`.planning`; import each name from the module that defines it.
"""
