"""The routing API's domain: settings, the service (model chain, retries, budget), guards, cache, model selection."""
