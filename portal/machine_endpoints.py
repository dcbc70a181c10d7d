"""Codat's webhook deliveries skip the middleware that exists for browsers.

A delivery is a signed POST from Codat's servers: no cookies, no user, no form. Sessions,
authentication, CSRF (the view is exempt anyway), messages, clickjacking headers and static
files have nothing to do for it. So MachineEndpointsMiddleware stands in settings.MIDDLEWARE
right after SecurityMiddleware (the HTTPS redirect and HSTS apply to every request): for the
path of a machine endpoint it calls the view itself and hands its response back, and the
middleware after it never runs. Every other request (the admin, the consent pages, health) goes
on down the whole chain.

One handler and one chain, settings.MIDDLEWARE, for gunicorn and Django's test client alike:
what the tests see of a delivery is what production does with it.
"""

from functools import cached_property

from django.urls import get_script_prefix, resolve, reverse

# URL names of the endpoints that only machines call.
MACHINE_ENDPOINTS = ("webhooks:codat", "webhooks:codat_without_slash")


class MachineEndpointsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    @cached_property
    def views(self) -> dict:
        """The machine endpoints' views by path (request.path_info, without the script prefix).

        Looked up at the first request, when the URLconf can be imported, and then kept: a
        dictionary lookup per request instead of a walk through the URL patterns.
        """
        prefix = get_script_prefix()
        paths = ("/" + reverse(name).removeprefix(prefix) for name in MACHINE_ENDPOINTS)
        return {path: resolve(path).func for path in paths}

    def __call__(self, request):
        view = self.views.get(request.path_info)
        if view is None:
            return self.get_response(request)
        # ALLOWED_HOSTS, which CommonMiddleware checks further down the chain for every other
        # request. DisallowedHost answers 400, as it does there.
        request.get_host()
        return view(request)
