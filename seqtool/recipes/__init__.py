"""YAML recipes: load and validate (``load``), expand sweeps (``expand``), run one
(``execute``), run them all here or on Dask and summarise (``runner``)."""
