"""thesislib: the library behind the executable companion to the thesis
*Resource-efficient machine learning* (G. Gray, University of Edinburgh).

Shared machinery lives in its own module, named for what it does:

- :mod:`thesislib.data` — registry of the real data sets, search path, checksums, loaders.
- :mod:`thesislib.training` — device choice, seeding, the training loop, resumable checkpoints.
- :mod:`thesislib.runs` — papermill profiles, the notebook runner, grids, the results store, the book build.
- :mod:`thesislib.plots` — holoviews/bokeh and matplotlib defaults for the book's figures.

Chapter code lives in modules named after the thesis' ideas (budget learning for
chapter 3, Moonshine for chapter 4, compressed linear transforms for chapter 5).
"""

__version__ = "0.1.0"
