"""The dashboard's pages, run by ``st.navigation`` in ``dashboard/app.py``, and their shared helpers.

Not named ``pages/``: Streamlit serves a ``pages/`` folder beside the main script as legacy
multipage scripts, and a deep link opened first on a fresh server (``/item?item=...``) would run
the page without the app's config.
"""
