"""The prediction service on LitServe: the LitAPI, the page and routes, bad requests, and its processes."""
