"""Cold start: items and users the model never saw, embedded without retraining.

* :mod:`~kgrec.coldstart.extend` -- add nodes to a trained graph and run the trained encoder;
* :mod:`~kgrec.coldstart.items` -- new items from a description and RDF triples;
* :mod:`~kgrec.coldstart.users` -- new users from a few liked items or a text profile.

The held-out-items evaluation with its baselines trains runs, so it sits above the run object,
with the other benchmarks: :mod:`kgrec.bench.coldstart`.

Nothing is imported here, so importing one submodule stays cheap.
"""
