"""A stand-in for django-esi's ESIClient that asks the bench's ESI stub over real HTTP.

Auth 5.5 calls ESI only through ``allianceauth.eveonline.providers.open_api_provider`` (an
``esi.openapi_clients.ESIClientProvider``), as ``client.<Tag>.<OperationId>(**params).result(...)``.
This client offers the seven operations of the provider's OPEN_API_OPERATIONS with the same call shape,
sends each as an HTTP request (httpx2, the HTTP library django-esi uses, one pooled client per process
with django-esi's own timeouts and limits) and returns what ``result`` returns: the JSON as attribute
objects, plus a response with the headers when ``return_response`` is set. Not emulated: django-esi's
ETag and response cache in Redis, its retry wrapper, its signals and aiopenapi3's response models.
"""

import datetime
from types import SimpleNamespace

import httpx2
from esi.exceptions import HTTPClientError, HTTPNotModified, HTTPServerError
from esi.http_utils import build_limits, build_timeout


class _Model(SimpleNamespace):
    """ESI leaves out optional fields that have no value; django-esi's response models read them as None."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return None


DATE_TIME_FIELDS = {"birthday", "date_founded"}  # ESI's format: date-time fields; the models parse them


def _namespace(value, key=None):
    if isinstance(value, dict):
        return _Model(**{k: _namespace(v, k) for k, v in value.items()})
    if key in DATE_TIME_FIELDS and isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    if isinstance(value, list):
        return [_namespace(v) for v in value]
    return value


class _Operation:
    def __init__(self, http, method, path, body=None):
        self.http, self.method, self.path, self.body = http, method, path, body

    def result(self, return_response=False, **_options):
        response = self.http.request(self.method, self.path, json=self.body)
        if response.status_code == 304:
            raise HTTPNotModified(status_code=304, headers=response.headers)
        if response.status_code >= 500:
            raise HTTPServerError(status_code=response.status_code, headers=response.headers, data=response.text)
        if response.status_code >= 400:
            raise HTTPClientError(status_code=response.status_code, headers=response.headers, data=response.text)
        data = _namespace(response.json())
        return (data, response) if return_response else data

    def results(self, return_response=False, **options):
        data = self.result(return_response=return_response, **options)
        return data


class _Tag:
    def __init__(self, http, operations):
        self._http, self._operations = http, operations

    def __getattr__(self, name):
        try:
            method, template, body_param = self._operations[name]
        except KeyError:
            raise AttributeError("the bench's ESI stub has no operation %s" % name) from None

        def call(**params):
            body = params.pop(body_param) if body_param else None
            return _Operation(self._http, method, template.format(**params), body)
        return call


class StubEsiClient:
    """client.Alliance / .Character / .Corporation / .Universe with the provider's operations."""

    def __init__(self, base_url):
        http = httpx2.Client(base_url=base_url, timeout=build_timeout(), limits=build_limits(),
                             headers={"User-Agent": "authops-bench (offline ESI stub)"})
        self.Alliance = _Tag(http, {  # pylint: disable=invalid-name  # ESI's tag names
            "GetAlliancesAllianceId": ("GET", "/alliances/{alliance_id}/", None),
            "GetAlliancesAllianceIdCorporations": ("GET", "/alliances/{alliance_id}/corporations/", None)})
        self.Character = _Tag(http, {  # pylint: disable=invalid-name
            "GetCharactersCharacterId": ("GET", "/characters/{character_id}/", None),
            "PostCharactersAffiliation": ("POST", "/characters/affiliation/", "body")})
        self.Corporation = _Tag(http, {  # pylint: disable=invalid-name
            "GetCorporationsCorporationId": ("GET", "/corporations/{corporation_id}/", None)})
        self.Universe = _Tag(http, {  # pylint: disable=invalid-name
            "GetUniverseFactions": ("GET", "/universe/factions/", None),
            "PostUniverseNames": ("POST", "/universe/names/", "body")})
