{{ (cookiecutter.project_name ~ ": " ~ cookiecutter.description) | py_str }}

__version__ = {{ cookiecutter.version | py_str }}
