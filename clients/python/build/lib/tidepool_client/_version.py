# The client's release: one place, read by pyproject.toml (setuptools' dynamic version) and sent in
# the User-Agent; it follows the server's (Sources/Tidepool/Support/ReleaseVersion.swift), which a
# test checks.
__version__ = "0.2.0"
