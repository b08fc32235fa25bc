"""Loss-curve laws: fit Tissue et al. 2024 and the multi-power law (Luo et al. 2025)
to logged curves, predict any schedule, rank schedules before spending compute.

Modules: `curves` (CSV / metrics.jsonl input), `known` (the shared curves'
schedules), `areas` (vectorised LR sums), `tissue`, `mpl` (the laws), `fit`
(deterministic robust fitting, FIT.json), `goodness` (goodness of fit), `plan`
(ranking and schedule optimisation), `plots`. See docs/laws.md.
"""
