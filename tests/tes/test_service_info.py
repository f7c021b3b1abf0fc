"""`GET /service-info`: what a TES client asks first."""

from __future__ import annotations

from tes_api import Service


def test_service_info_says_tes_1_1_from_the_ga4gh(service: Service) -> None:
    # Act: py-tes refuses an answer with a field it does not know
    info = service.client().get_service_info()

    # Assert
    assert info.type == {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}
    assert info.id and info.name and info.version
    assert info.organization and info.organization["name"] and info.organization["url"]


def test_service_info_names_the_volume_as_its_file_storage(service: Service) -> None:
    info = service.client().get_service_info()

    file_locations = [location for location in info.storage or [] if location.startswith("file:///")]
    assert len(file_locations) == 1, info.storage


def test_service_info_lists_cluster_as_the_only_backend_parameter_it_supports(service: Service) -> None:
    info = service.client().get_service_info()

    assert info.tes_resources_backend_parameters == ["cluster"]


def test_service_info_is_served_only_under_the_tes_prefix(service: Service) -> None:
    # Act: the other prefixes py-tes tries after a 404 or a 5xx
    paths = ("/service-info", "//v1/service-info", "//service-info")
    answers = [service.request("GET", path).status_code for path in paths]

    # Assert
    assert answers == [200, 404, 404]
