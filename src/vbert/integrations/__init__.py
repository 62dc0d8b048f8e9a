"""Optional integrations with the tools users already run; each module needs its own extra.

Nothing here is imported by ``import vbert``: import the module you need
(``vbert.integrations.server``, ``vbert.integrations.langchain``...), and a missing extra
gives an error that names the ``pip install 'vbert[...]'`` command.
"""
