"""What the operator and the control plane both know about dashboards.

- `panels`: the pure rules of panel SQL (one statement, parameters, the shape of the
  engine's parse tree, friendly errors, materialized view names). The operator
  validates and materializes panels with them; the control plane binds a panel's
  parameters and runs it with them. Defined here once, so neither imports the other.
"""
