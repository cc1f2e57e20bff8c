from setuptools import setup

setup(cffi_modules=["kernels/build.py:ffibuilder"])
