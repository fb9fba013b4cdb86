"""Pure read-outs, no database: ranking metrics on a hold-out (`ranking`), per-impression
AUC/MRR/nDCG of shown slates (`impressions`), off-policy estimators (`off_policy`) and the
per-model A/B comparison of retention (`ab`)."""
