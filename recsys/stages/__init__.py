"""The night's stages, one module per DAG task, in the order data flows:
extract -> train / train_rl -> evaluate / ope -> gate -> score -> publish, and retention
beside them. Each stage reads the settings and the artifacts of the stages before it,
and returns a small manifest."""
