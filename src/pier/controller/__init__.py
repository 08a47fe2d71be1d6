"""The controller: a level-triggered reconcile loop from desired node specs to instances."""
