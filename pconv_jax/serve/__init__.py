"""`pconv serve`: a web page to paint a hole over a photo and have it filled, and a REST API.

`app` (the server: FastAPI + uvicorn, signals, the port), `rest` (/api/v1), `page` (the Gradio
page at /), `handlers` (`App`: the request handlers, which tests call without a server). Every
fill goes through `pconv_jax.inference.fill`, the flow `pconv inpaint` uses.
"""
