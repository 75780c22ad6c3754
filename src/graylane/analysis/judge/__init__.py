"""The statistical judge: canary versus stable over the same windows, at a set false-alarm rate.

``distributions`` (normal, t, binomial, incomplete beta), ``sequential`` (mixture likelihood ratios),
``counts`` (exact conditional-binomial test of two Poisson rates), ``samples`` (Mann-Whitney,
Brown-Forsythe, Hodges-Lehmann), ``verdict`` (the tests combined into Pass / Fail / Undecided / NoData with
p-values, intervals and effect sizes) and ``simulate`` (seeded false-alarm and power measurement).
Pure: no I/O, no clock (an import-linter contract checks it).
"""
