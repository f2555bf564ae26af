"""The distillation pipeline's domain: queries, labeling, the dataset, metrics, the gate, the judge, the report."""
