from panelhub.gateway.routing import Route, Router


def test_transparent_default_bus_maps_unit_to_same_address():
    router = Router({}, default_bus="line")
    assert router.resolve(7) == Route("line", 7)
    assert router.resolve(0) == Route("line", 0)  # broadcast on the line


def test_configured_route_overrides_default():
    router = Router({10: Route("meter", 1)}, default_bus="line")
    assert router.resolve(10) == Route("meter", 1)
    assert router.resolve(11) == Route("line", 11)


def test_no_route_without_default_and_never_for_unit_255_or_reserved():
    assert Router({}).resolve(3) is None
    router = Router({}, default_bus="line")
    assert router.resolve(255) is None
    assert router.resolve(248) is None
