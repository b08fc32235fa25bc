"""Continual-learning analysis of logged runs, pure and without torch: the evaluations
as a grid of points x domains (`timeline`), the continual metrics over it (`metrics`),
and runs against a re-training baseline (`compare`). Reports, laws and the demo read
runs through it; the torch evaluator that produces the numbers is `rewarm.evaluation`."""
