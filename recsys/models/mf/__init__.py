"""Matrix factorisation on implicit feedback: ALS (`als`), BPR (`bpr`), their shared
input checks (`common`), the sparse kernels (`_sparse`) and warm starts (`warm`)."""
