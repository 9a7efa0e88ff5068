"""Data preparation for tinyalex: from image folders to HDF5 files of 256x256 images.

    prepare.py     ImageNet-style folders -> train.h5 / val.h5 (the command line tool),
                   and open_prepared() to read them
    listing.py     which files belong to a split, and their class labels
    images.py      one image file -> a 256x256 RGB array
    stats.py       mean image and PCA colour statistics of the training set
    synthetic.py   a small built-in data set of shapes and textures
    errors.py      the errors raised for bad input

Import from the modules themselves (`from datasets.prepare import open_prepared`):
this file imports nothing, so that `python -m datasets.prepare` runs cleanly.
docs/data.md explains all of it.
"""
