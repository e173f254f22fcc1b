# One image per requirements tier. `invoke build` passes every argument; by hand:
#
#   python -m build --wheel --outdir dist .     # exactly one wheel in dist/
#   docker build --build-arg PYTHON_VERSION="$(cat .python-version)" \
#       --build-arg TIER=base [--secret id=ca,src=corporate-ca.pem] .
#
# Optional build secrets, never build arguments (those stay in the image history):
#   ca       a CA bundle for a TLS-intercepting proxy or a private index
#   pipconf  a pip.conf naming a private index, with its credentials

# From .python-version, so the image runs the Python the locks were made for.
ARG PYTHON_VERSION
ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim


# Two environments: /opt/venv is what ships, without pip; /opt/installer holds pip.
FROM ${BASE_IMAGE} AS venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
RUN python3 -m venv --without-pip /opt/venv \
 && python3 -m venv /opt/installer


# The tier's locked dependencies, installed exactly as pinned and hashed.
# --require-hashes: a lock line whose artifact does not match fails the build.
# --no-deps: the lock is complete; nothing is resolved here.
# --only-binary: no sdist runs code at build time, and no compiler is needed.
FROM venv AS deps
ARG TIER
RUN test -n "${TIER}" \
 || { echo "Set the tier: --build-arg TIER=<name of a requirements/*.txt>" >&2; exit 1; }
COPY requirements/${TIER}.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca,required=false \
    --mount=type=secret,id=pipconf,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && if [ -s /run/secrets/pipconf ]; then export PIP_CONFIG_FILE=/run/secrets/pipconf; fi \
 && /opt/installer/bin/pip --python /opt/venv/bin/python install \
        --require-hashes --no-deps --only-binary=:all: -r /tmp/requirements.txt


# The project itself, from the wheel built beforehand, staged as a tree of its
# own: the same for every tier, and a small last layer of the runtime image.
FROM venv AS app
COPY dist/*.whl /tmp/dist/
RUN set -- /tmp/dist/*.whl \
 && if [ "$#" -ne 1 ]; then echo "Expected one wheel in dist/, found $#: $*" >&2; exit 1; fi \
 && /opt/installer/bin/pip --python /opt/venv/bin/python install \
        --no-deps --no-index --no-warn-script-location --root /opt/app "$1"


# A development shell: build with `--target dev --build-arg TIER={{ cookiecutter.dev_tier }}`.
# /app/src comes first on sys.path, so mounting the sources over it
# (-v "$PWD:/app") behaves like an editable install.
FROM deps AS dev
COPY --from=app /opt/app/ /
RUN useradd --uid 1000 --user-group --create-home app
WORKDIR /app
COPY --chown=1000:1000 . .
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONPATH=/app/src \
    VIRTUAL_ENV=/opt/venv
USER 1000


# What ships: the base image, the environment and nothing else.
FROM ${BASE_IMAGE} AS runtime
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 1000
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/opt/venv/bin/{{ cookiecutter.project_slug }}", "health"]
ENTRYPOINT ["/opt/venv/bin/{{ cookiecutter.project_slug }}"]
# Last, so a code change rebuilds one small layer. COPY ignores USER: root owns these.
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /opt/app/ /
