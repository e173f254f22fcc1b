"""Scripts the image build runs inside its stages; not modules the tooling imports.

The Dockerfile bind-mounts each one for the RUN that needs it (no layer keeps
it) and runs it with the base image's python3: standard library only, nothing
imported from tooling.
"""
