"""One blueprint per function group; function_app.py registers them."""
