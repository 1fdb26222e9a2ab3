pytest_plugins = ["perfanalysis.testing.pytest_plugin"]
