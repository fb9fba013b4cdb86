"""Item-item models: a user's score of item j is (x_u S)_j, her binary history x_u times an
(n_items, n_items) item-item matrix S. `knn` gives a sparse S (each item's nearest
neighbours, cosine or BM25-weighted), `ease` a dense one (Steck 2019's closed form), and
`model` the saved artifact both are scored from (`recsys.models.topk.top_k_item_item`)."""
